"""Elementwise ops and matmul against torch, plus finite-difference gradients."""

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES, compare, gradcheck, rng

SHAPE_PAIRS = [
    ((3, 4), (3, 4)),
    ((2, 3, 4), (4,)),
    ((5, 1), (1, 6)),
    ((), (2, 3)),
    ((4, 1, 3), (2, 1)),
]

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "maximum": (dl.maximum, torch.maximum),
    "minimum": (dl.minimum, torch.minimum),
    "add_alpha": (lambda a, b: dl.add(a, b, alpha=2.5), lambda a, b: torch.add(a, b, alpha=2.5)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
def test_binary_against_torch(name, shapes, device):
    f, tf = BINARY[name]
    r = rng(1)
    a = r.standard_normal(shapes[0]).astype(np.float32)
    b = r.standard_normal(shapes[1]).astype(np.float32)
    if name == "div":
        b = np.sign(b) * (np.abs(b) + 0.5)
    compare(f, tf, a, b, device=device)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
def test_binary_gradcheck(name):
    f = BINARY[name][0]
    r = rng(2)
    gradcheck(f, r.standard_normal((3, 1, 2)), r.uniform(0.5, 2, (4, 1)))


def test_pow_against_torch_and_gradcheck():
    r = rng(3)
    a = r.uniform(0.5, 2.0, (3, 4)).astype(np.float32)
    b = r.standard_normal((4,)).astype(np.float32)
    compare(lambda x, y: x**y, lambda x, y: x**y, a, b)
    compare(lambda x: x**3, lambda x: x**3, a)
    compare(lambda x: x**0.5, lambda x: x**0.5, a)
    compare(lambda x: 2.0**x, lambda x: 2.0**x, a)
    gradcheck(lambda x, y: x**y, a, b)
    # the gradient at 0 ** 0 is 0 for both operands, as in torch
    compare(
        lambda x, y: x**y,
        lambda x, y: x**y,
        np.zeros(3, np.float32),
        np.array([0.0, 1.0, 2.0], np.float32),
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scalar", [2, 0.5, -3.0])
def test_scalar_and_reflected_forms(scalar, device):
    a = rng(4).uniform(0.5, 2, (3, 5)).astype(np.float32)
    for f in (
        lambda x: x + scalar,
        lambda x: scalar + x,
        lambda x: x - scalar,
        lambda x: scalar - x,
        lambda x: x * scalar,
        lambda x: scalar * x,
        lambda x: x / scalar,
        lambda x: scalar / x,
        lambda x: -x,
        lambda x: abs(x - 1),
    ):
        compare(f, f, a, device=device)


UNARY = {
    "exp": (dl.exp, torch.exp, (-2, 2)),
    "log": (dl.log, torch.log, (0.1, 3)),
    "sqrt": (dl.sqrt, torch.sqrt, (0.1, 3)),
    "rsqrt": (dl.rsqrt, torch.rsqrt, (0.1, 3)),
    "sin": (dl.sin, torch.sin, (-3, 3)),
    "cos": (dl.cos, torch.cos, (-3, 3)),
    "tanh": (dl.tanh, torch.tanh, (-3, 3)),
    "sigmoid": (dl.sigmoid, torch.sigmoid, (-6, 6)),
    "relu": (dl.relu, torch.relu, (-2, 2)),
    "abs": (dl.abs, torch.abs, (-2, 2)),
    "neg": (dl.neg, torch.neg, (-2, 2)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unary_against_torch(name, dtype, device):
    f, tf, (lo, hi) = UNARY[name]
    a = rng(5).uniform(lo, hi, (4, 6)).astype(dtype)
    if name in ("relu", "abs"):
        a[np.abs(a) < 1e-3] = 0.5  # away from the kink
    compare(f, tf, a, device=device)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck(name):
    f, _, (lo, hi) = UNARY[name]
    a = rng(6).uniform(lo, hi, (3, 4))
    if name in ("relu", "abs"):
        a = np.where(np.abs(a) < 0.1, 0.5, a)
    gradcheck(f, a)


ACTIVATIONS = {
    "leaky_relu": (
        lambda x: dl.ops.elementwise.leaky_relu(x, 0.2),
        lambda x: torch.nn.functional.leaky_relu(x, 0.2),
    ),
    "elu": (lambda x: dl.ops.elementwise.elu(x, 1.3), lambda x: torch.nn.functional.elu(x, 1.3)),
    "gelu": (dl.ops.elementwise.gelu, torch.nn.functional.gelu),
    "gelu_tanh": (
        lambda x: dl.ops.elementwise.gelu(x, approximate="tanh"),
        lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    ),
    "silu": (dl.ops.elementwise.silu, torch.nn.functional.silu),
    "softplus": (
        lambda x: dl.ops.elementwise.softplus(x, beta=2.0, threshold=5.0),
        lambda x: torch.nn.functional.softplus(x, beta=2.0, threshold=5.0),
    ),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_against_torch(name, device):
    f, tf = ACTIVATIONS[name]
    a = rng(7).uniform(-4, 4, (5, 7)).astype(np.float32)
    a[np.abs(a) < 1e-2] = 0.3
    compare(f, tf, a, device=device)
    gradcheck(f, a.astype(np.float64))


def test_sigmoid_is_stable_at_extremes():
    x = dl.tensor([-1000.0, -80.0, 0.0, 80.0, 1000.0], requires_grad=True)
    y = dl.sigmoid(x)
    y.backward(dl.ones(5))
    assert np.all(np.isfinite(y.detach().numpy()))
    np.testing.assert_allclose(y.detach().numpy(), [0, 0, 0.5, 1, 1], atol=1e-6)
    assert np.all(np.isfinite(x.grad.numpy()))


@pytest.mark.parametrize("device", DEVICES)
def test_clamp_and_where(device):
    a = rng(8).uniform(-2, 2, (4, 5)).astype(np.float32)
    b = rng(9).uniform(-2, 2, (5,)).astype(np.float32)
    compare(lambda x: dl.clamp(x, -0.5, 0.7), lambda x: torch.clamp(x, -0.5, 0.7), a, device=device)
    compare(lambda x: x.clamp(min=0.1), lambda x: x.clamp(min=0.1), a, device=device)
    compare(lambda x: x.clamp(max=0.1), lambda x: x.clamp(max=0.1), a, device=device)
    compare(
        lambda x, y: dl.where(x > y, x, y * 2),
        lambda x, y: torch.where(x > y, x, y * 2),
        a,
        b,
        device=device,
    )
    compare(
        lambda x: dl.where(x > 0, x, 0.0), lambda x: torch.where(x > 0, x, 0.0), a, device=device
    )
    with pytest.raises(RuntimeError, match="at least one of min and max"):
        dl.clamp(dl.tensor(a))


def test_maximum_ties_split_gradient_like_torch():
    a = np.array([1.0, 2.0, 3.0], np.float32)
    compare(dl.maximum, torch.maximum, a, a.copy())
    compare(dl.minimum, torch.minimum, a, np.array([1.0, 5.0, 0.0], np.float32))


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparisons(op):
    a = rng(10).integers(0, 3, (4, 5)).astype(np.float32)
    b = rng(11).integers(0, 3, (5,)).astype(np.float32)
    out = getattr(dl, op)(dl.tensor(a), dl.tensor(b))
    ref = getattr(torch, op)(torch.tensor(a), torch.tensor(b))
    assert out.dtype == dl.bool
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    # scalar on either side
    np.testing.assert_array_equal((1.0 < dl.tensor(a)).numpy(), (1.0 < torch.tensor(a)).numpy())


PROMOTION_CASES = [
    (np.float32, np.int64),
    (np.int64, np.float32),
    (np.int32, np.int64),
    (np.uint8, np.int8),
    (np.bool_, np.int64),
    (np.float32, np.float64),
    (np.bool_, np.float32),
]


@pytest.mark.parametrize("dta, dtb", PROMOTION_CASES)
@pytest.mark.parametrize("op", ["add", "mul", "div", "sub"])
def test_type_promotion_matches_torch(dta, dtb, op):
    if op == "sub" and np.bool_ in (dta, dtb):
        pytest.skip("torch forbids subtracting bools")
    a = np.array([[1, 0], [3, 1]]).astype(dta)
    b = np.array([1, 2]).astype(dtb)
    out = getattr(dl, op)(dl.tensor(a), dl.tensor(b))
    ref = getattr(torch, op)(torch.tensor(a), torch.tensor(b))
    assert out.dtype.name == str(ref.dtype).replace("torch.", "")
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6)


@pytest.mark.parametrize("value", [2, 2.5, True])
@pytest.mark.parametrize("dt", [np.int64, np.float32, np.float64, np.bool_])
def test_scalar_promotion_matches_torch(dt, value):
    a = np.array([1, 0, 1]).astype(dt)
    out = dl.tensor(a) * value
    ref = torch.tensor(a) * value
    assert out.dtype.name == str(ref.dtype).replace("torch.", "")
    # a 0-d tensor of a higher category wins, like a scalar
    out0 = dl.tensor(a) + dl.tensor(1.5, dtype=dl.float64)
    ref0 = torch.tensor(a) + torch.tensor(1.5, dtype=torch.float64)
    assert out0.dtype.name == str(ref0.dtype).replace("torch.", "")


MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4, 5)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((4,), (2, 4, 3)),
    ((2, 3, 4), (4,)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_against_torch(shapes, device):
    r = rng(12)
    a = r.standard_normal(shapes[0]).astype(np.float32)
    b = r.standard_normal(shapes[1]).astype(np.float32)
    compare(lambda x, y: x @ y, lambda x, y: x @ y, a, b, device=device)


def test_matmul_gradcheck_and_errors():
    r = rng(13)
    gradcheck(dl.matmul, r.standard_normal((2, 3, 4)), r.standard_normal((4, 2)))
    gradcheck(dl.matmul, r.standard_normal((3,)), r.standard_normal((2, 3, 2)))
    with pytest.raises(
        RuntimeError, match=r"\(128, 784\) @ \(512, 10\): inner dimensions 784 and 512"
    ):
        dl.randn(128, 784) @ dl.randn(512, 10)
    with pytest.raises(RuntimeError, match="batch dimensions"):
        dl.randn(2, 3, 4) @ dl.randn(3, 4, 5)
    with pytest.raises(RuntimeError, match="at least 1 dimension"):
        dl.matmul(dl.tensor(2.0), dl.randn(3))


@pytest.mark.parametrize("device", DEVICES)
def test_linear_against_torch(device):
    r = rng(14)
    x = r.standard_normal((2, 3, 5)).astype(np.float32)
    w = r.standard_normal((4, 5)).astype(np.float32)
    b = r.standard_normal((4,)).astype(np.float32)
    compare(dl.ops.linalg.linear, torch.nn.functional.linear, x, w, b, device=device)
    compare(
        lambda x, w: dl.ops.linalg.linear(x, w), torch.nn.functional.linear, x, w, device=device
    )
    gradcheck(dl.ops.linalg.linear, x, w, b)
    with pytest.raises(RuntimeError, match=r"input \(2, 3, 5\) has 5 features but weight"):
        dl.ops.linalg.linear(dl.tensor(x), dl.randn(4, 6))


def test_rounding_and_predicates():
    a = np.array([-1.5, -0.5, 0.4, 2.5, np.inf, np.nan], np.float32)
    for name in ("floor", "ceil", "trunc", "sign", "isnan", "isinf", "isfinite", "round"):
        out = getattr(dl, name)(dl.tensor(a)).numpy()
        ref = getattr(torch, name)(torch.tensor(a)).numpy()
        np.testing.assert_array_equal(out, ref, err_msg=name)
    # floor division as torch (floor rounding)
    x, y = np.array([7, -7, 5]), np.array([2, 2, -3])
    np.testing.assert_array_equal(
        (dl.tensor(x) // dl.tensor(y)).numpy(), (torch.tensor(x) // torch.tensor(y)).numpy()
    )


@pytest.mark.parametrize(
    "dtype", [np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_]
)
@pytest.mark.parametrize(
    "shapes",
    [
        ((200, 100), (200, 100), (200, 100)),
        ((200, 100), (100,), ()),
        ((200, 1), (1, 100), (200, 100)),
    ],
    ids=["same", "broadcast", "outer"],
)
def test_branch_free_where_is_bit_exact(dtype, shapes):
    """darklib's NumPy where (a bitwise blend, for large operands) against np.where: same
    dtype and shape, same bits (NaN, -0.0 and infinities included), Python scalars weak."""
    from darklib.ops.elementwise import _where

    r = rng(15)
    c = r.random(shapes[0]) > 0.5
    a = (r.standard_normal(shapes[1]) * 10).astype(dtype)
    b = (r.standard_normal(shapes[2]) * 10).astype(dtype)
    if np.dtype(dtype).kind == "f" and a.size >= 5:
        a.flat[:5] = [np.nan, -0.0, np.inf, -np.inf, 0.0]
    for x, y in ((a, b), (a, 0), (0.5 if np.dtype(dtype).kind == "f" else 1, b)):
        got, want = _where(np, c, x, y), np.where(c, x, y)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def test_alpha_and_value_apply_in_the_result_dtype():
    # other * alpha is not taken in other's narrower dtype: int8 values do not wrap, and
    # alpha does not promote the result
    cases = [
        lambda L: L.add(L.tensor([True]), L.tensor([True]), alpha=2),
        lambda L: L.add(L.tensor([1.0], dtype=L.float16), L.tensor([2], dtype=L.uint8), alpha=0.5),
        lambda L: L.add(L.tensor([True]), False, alpha=2),
        lambda L: L.sub(L.tensor([1.0]), L.tensor([100], dtype=L.int8), alpha=3),
        lambda L: L.addcmul(
            L.zeros(2), L.tensor([100, 20], dtype=L.int8), L.tensor([100, 20], dtype=L.int8)
        ),
        lambda L: L.addcmul(L.tensor([1, 2]), L.tensor([1, 2]), L.tensor([1, 2]), value=0.5),
        lambda L: L.addcmul(L.tensor([1, 2]), L.tensor([1, 2]), L.tensor([1, 2]), value=True),
        lambda L: L.addcdiv(L.tensor([1.0, 2.0]), L.tensor([3.0, 4.0]), L.tensor([2, 8]), value=3),
    ]
    for case in cases:
        want, got = case(torch), case(dl)
        assert str(got.dtype).split(".")[1] == str(want.dtype).split(".")[1]
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    errors = [
        (lambda L: L.add(L.tensor([1, 2]), L.tensor([1, 2]), alpha=True), "Boolean alpha"),
        (lambda L: L.add(L.tensor([1, 2]), 1, alpha=0.5), "alpha must not be a floating"),
        (lambda L: L.addcdiv(L.tensor([1.0]), L.tensor([1]), L.tensor([2])), "nteger division"),
    ]
    for case, msg in errors:
        with pytest.raises(RuntimeError):
            case(torch)
        with pytest.raises(RuntimeError, match=msg):
            case(dl)
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    dl.addcmul(dl.zeros(2), x, dl.tensor([3, 4], dtype=dl.int8), value=2).sum().backward()
    assert x.grad.tolist() == [6.0, 8.0]


def test_in_place_forms_follow_torch():
    def run(L):
        out = []
        b = L.tensor([1, 2, 3])
        v, w = b[1:], b[:1]
        v <<= 1
        w >>= 1
        out.append(b)
        out.append(L.tensor([7, -7]).div_(2, rounding_mode="floor"))
        out.append(L.tensor([7.0, -7.0]).divide_(2, rounding_mode="trunc"))
        out.append(L.tensor([1.0, 2.0, 3.0]).lt_(2.5))
        out.append(L.tensor([1.0, 0.0, 3.0]).logical_and_(L.tensor([1.0, 1.0, 0.0])))
        out.append(L.tensor([5, 6]).bitwise_xor_(L.tensor([3, 3])))
        out.append(L.tensor([1.0, 2.0]).atan2_(L.tensor([1.0, -1.0])))
        out.append(L.tensor([3.0, 4.0]).hypot_(L.tensor([4.0, 3.0])))
        out.append(L.tensor([0.3, 0.5]).logit_())
        out.append(L.tensor([1.0, 2.0], dtype=L.float64).float_power_(2))
        out.append(L.tensor([1.5, 0.0, -1.0, float("nan")]).heaviside(L.tensor([0.5])))
        out.append(L.ldexp(L.tensor([1, 2]), L.tensor([2, 3])))
        out.append(L.tensor([-2.0, 3.0]).subtract_(L.tensor([1.0, 1.0]), alpha=2))
        out.append(reversed(L.tensor([1, 2, 3])))
        return out

    for got, want in zip(run(dl), run(torch)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
        assert str(got.dtype).split(".")[1] == str(want.dtype).split(".")[1]
    assert 3 in dl.tensor([[1, 2], [3, 4]]) and 5 not in dl.tensor([[1, 2], [3, 4]])
    with pytest.raises(RuntimeError, match="float64"):
        dl.tensor([1.0]).float_power_(2)
    with pytest.raises(RuntimeError, match="same dtype"):
        dl.heaviside(dl.tensor([1.0]), dl.tensor([1]))
