"""Adversarial differential tests of darklib's threaded CPU ops against torch.

Odd batch sizes (also smaller than the thread count), non-contiguous views, float64, grouped,
depthwise, dilated, strided and asymmetric convolutions, per-image conv chunks, pooling with
NaN/inf, batch norm in every rank and mode, ReLU on special values and integers, matmul/linear
with batched, broadcast and 1-D operands, and erf/GELU accuracy. The ``threaded`` fixture
(as in tests/test_parallel.py) drops the size thresholds so that small inputs take the split
paths.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import darklib as dl
from darklib.kernels import im2col as cpu
from darklib.kernels import parallel as par
from darklib.ops import conv as conv_ops
from tests.oracle import compare, rng

pytestmark = pytest.mark.skipif(
    not par.owns_blas, reason="this NumPy's BLAS has no per-thread control"
)

FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
BATCHES = st.sampled_from([1, 2, 3, 5, 7])
DTYPES = st.sampled_from([np.float32, np.float64])


def _tol(dt):
    return 1e-4 if dt == np.float32 else 1e-10


@pytest.fixture
def threaded(monkeypatch):
    monkeypatch.setattr(par, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(par, "SPLIT_MACS", 0)
    monkeypatch.setattr(par, "BLAS_OWN_MACS", 0)
    monkeypatch.setattr(par, "QUIET_SECONDS", math.inf)
    before = par.get_num_threads()
    par.set_num_threads(3)
    yield
    par.set_num_threads(before)


def _fresh_scratch():
    """Drop every thread's scratch buffers and padded frames (state left by earlier cases;
    see test_padded_frame_*)."""
    cpu.release_workspace()
    par.parallel_for(lambda s, e: cpu.release_workspace(), 3, 3)


def _view(kind, x):
    """A non-contiguous view of the stored array, with the logical (N, C, H, W) shape."""
    if kind == "perm":  # stored (W, H, C, N)
        return x.permute(3, 2, 1, 0)
    if kind == "flip":
        return x.flip(2)
    if kind == "slice":  # stored (N, C + 1, 2H, W)
        return x[:, 1:, ::2, :]
    return x


def _stored(kind, r, n, c, h, w, dt):
    shape = {"perm": (w, h, c, n), "slice": (n, c + 1, 2 * h, w)}.get(kind, (n, c, h, w))
    return r.standard_normal(shape).astype(dt)


# ------------------------------------------------------------------ convolution


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    depthwise = draw(st.booleans())
    cg = 1 if depthwise else draw(st.integers(1, 2))
    kh, kw = draw(st.sampled_from([(1, 1), (3, 3), (5, 5), (2, 3), (3, 1)]))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0]), 22))
    w = draw(st.integers(max(1, d[1] * (kw - 1) + 1 - 2 * p[1]), 22))
    return dict(
        n=draw(BATCHES),
        groups=groups,
        c=cg * groups,
        o=groups * draw(st.integers(1, 2)),
        k=(kh, kw),
        stride=s,
        dilation=d,
        padding=p,
        hw=(h, w),
        dt=draw(DTYPES),
        view=draw(st.sampled_from(["plain", "perm", "flip", "slice"])),
        chunk=draw(st.sampled_from([1, 5000, 1 << 21])),
        seed=draw(st.integers(0, 10**6)),
    )


@FUZZ
@given(conv_cases())
def test_conv2d_fuzz_follows_torch(threaded_fuzz, case):
    r = rng(case["seed"])
    n, c, o, dt, groups = case["n"], case["c"], case["o"], case["dt"], case["groups"]
    x = _stored(case["view"], r, n, c, *case["hw"], dt)
    w = r.standard_normal((o, c // groups, *case["k"])).astype(dt)
    b = r.standard_normal(o).astype(dt)
    kw = dict(
        stride=case["stride"], padding=case["padding"], dilation=case["dilation"], groups=groups
    )
    conv_ops._CHUNK_BYTES = case["chunk"]
    compare(
        lambda x, w, b: dl.nn.functional.conv2d(_view(case["view"], x), w, b, **kw),
        lambda x, w, b: F.conv2d(_view(case["view"], x), w, b, **kw),
        x,
        w,
        b,
        atol=_tol(dt),
        rtol=_tol(dt),
    )


@FUZZ
@given(conv_cases(), st.data())
def test_conv_transpose2d_fuzz_follows_torch(threaded_fuzz, case, data):
    r = rng(case["seed"])
    n, c, o, dt, groups = case["n"], case["c"], case["o"], case["dt"], case["groups"]
    (sh, sw), (dh, dw), (kh, kw) = case["stride"], case["dilation"], case["k"]
    x = _stored(case["view"], r, n, c, *case["hw"], dt)
    w = r.standard_normal((c, o // groups, kh, kw)).astype(dt)
    b = r.standard_normal(o).astype(dt)
    op = (
        data.draw(st.integers(0, max(sh, dh) - 1)),
        data.draw(st.integers(0, max(sw, dw) - 1)),
    )
    pad = (min(case["padding"][0], dh * (kh - 1) // 2), min(case["padding"][1], dw * (kw - 1) // 2))
    kwargs = dict(
        stride=case["stride"],
        padding=pad,
        output_padding=op,
        groups=groups,
        dilation=case["dilation"],
    )
    conv_ops._CHUNK_BYTES = case["chunk"]
    compare(
        lambda x, w, b: dl.nn.functional.conv_transpose2d(_view(case["view"], x), w, b, **kwargs),
        lambda x, w, b: F.conv_transpose2d(_view(case["view"], x), w, b, **kwargs),
        x,
        w,
        b,
        atol=_tol(dt),
        rtol=_tol(dt),
    )


@pytest.mark.parametrize("n", [1, 2, 33])
@pytest.mark.parametrize("chunk", [1, 1 << 26], ids=["image-chunks", "one-chunk"])
def test_depthwise_5x5_strided_dilated_conv_on_wide_images(threaded, monkeypatch, n, chunk):
    """Large images (the per-image "nkp" columns and polyphase col2im), depthwise groups."""
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", chunk)
    r = rng(n)
    x = r.standard_normal((n, 4, 23, 29)).astype(np.float64)
    w = r.standard_normal((8, 1, 5, 5)).astype(np.float64)
    kw = dict(stride=(2, 1), padding=(2, 3), dilation=(1, 2), groups=4)
    compare(
        lambda x, w: dl.nn.functional.conv2d(x, w, **kw),
        lambda x, w: F.conv2d(x, w, **kw),
        x,
        w,
        atol=1e-10,
        rtol=1e-10,
    )


def test_unbatched_conv_and_transposed_conv_with_threads(threaded, monkeypatch):
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", 1)
    r = rng(3)
    x = r.standard_normal((3, 9, 8)).astype(np.float32)
    w = r.standard_normal((6, 3, 3, 3)).astype(np.float32)
    compare(
        lambda x, w: dl.nn.functional.conv2d(x, w, stride=2, padding=1),
        lambda x, w: F.conv2d(x, w, stride=2, padding=1),
        x,
        w,
        atol=1e-4,
    )
    wt = r.standard_normal((3, 2, 4, 4)).astype(np.float32)
    kw = dict(stride=2, padding=1, output_padding=1)
    compare(
        lambda x, w: dl.nn.functional.conv_transpose2d(x, w, **kw),
        lambda x, w: F.conv_transpose2d(x, w, **kw),
        x,
        wt,
        atol=1e-4,
    )


# The padded-input scratch frames of darklib/kernels/im2col.py (``_frame``) are keyed by
# the padded shape only, and their border is written once. Two padded copies of the same
# padded shape but a different top/left split (asymmetric 'same' padding of an even kernel,
# the input gradient's "full" convolution, or just two layers) reuse one frame: the second
# one's border still holds the first one's data.


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_padded_frame_same_padding_even_kernel_input_grad():
    """One fresh conv, no threads: Conv2d(3, 3, 4, padding='same') on 24x24 images. The
    forward pads (top 1, bottom 2) into a (27, 27) frame; the input gradient's full
    convolution pads gy (top 2, bottom 1) into the same frame, whose row 1 still holds x."""
    _fresh_scratch()
    r = rng(0)
    x = r.standard_normal((2, 3, 24, 24))
    w = r.standard_normal((3, 3, 4, 4))
    compare(
        lambda x, w: dl.nn.functional.conv2d(x, w, padding="same"),
        lambda x, w: F.conv2d(x, w, padding="same"),
        x,
        w,
        atol=1e-10,
        rtol=1e-10,
    )


@pytest.mark.parametrize("groups", [1, 2], ids=["wide-images", "grouped"])
def test_padded_frame_two_convs_with_the_same_padded_shape(groups):
    """conv(pad 1) of 25x25 then conv(pad 2) of 23x23: both pad to 27x27 (groups > 1 or
    >= 400 output pixels take the frame path); the second reads the first's pixels."""
    _fresh_scratch()
    r = rng(1)
    conv = dl.nn.functional.conv2d
    x1 = r.standard_normal((1, 2, 25, 25))
    w1 = r.standard_normal((2, 2 // groups, 3, 3))
    conv(dl.tensor(x1), dl.tensor(w1), padding=1, groups=groups)
    x2 = r.standard_normal((1, 2, 23, 23))
    w2 = r.standard_normal((2, 2 // groups, 5, 5))
    got = conv(dl.tensor(x2), dl.tensor(w2), padding=2, groups=groups).numpy()
    want = F.conv2d(torch.tensor(x2), torch.tensor(w2), padding=2, groups=groups).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------ max pooling


@st.composite
def pool_cases(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return dict(
        n=draw(BATCHES),
        c=draw(st.integers(1, 3)),
        hw=(draw(st.integers(1, 11)), draw(st.integers(1, 11))),
        kernel_size=k,
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=(draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2))),
        dilation=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        ceil_mode=draw(st.booleans()),
        fill=draw(st.sampled_from(["plain", "ties", "nan", "inf", "-inf"])),
        dt=draw(DTYPES),
        view=draw(st.sampled_from(["plain", "perm", "flip", "slice"])),
        seed=draw(st.integers(0, 10**6)),
    )


@FUZZ
@given(pool_cases())
def test_max_pool2d_fuzz_follows_torch(threaded_fuzz, case):
    r = rng(case["seed"])
    h, w = case["hw"]
    x = _stored(case["view"], r, case["n"], case["c"], h, w, case["dt"])
    fill = case["fill"]
    if fill == "ties":
        x = np.round(x)
    elif fill != "plain":
        x[r.random(x.shape) < 0.3] = float(fill)
    kw = {k: case[k] for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode")}
    kw["return_indices"] = True
    try:
        _, idx = F.max_pool2d(_view(case["view"], torch.tensor(x)), **kw)
    except RuntimeError:  # torch rejects the geometry: darklib must too
        with pytest.raises((RuntimeError, ValueError)):
            dl.nn.functional.max_pool2d(_view(case["view"], dl.tensor(x)), **kw)
        return
    # a window lying wholly in the padding: torch's index points outside the plane (its
    # backward then writes out of bounds and corrupts the heap), so compare forward only
    grad = fill in ("plain", "ties") and (idx.numel() == 0 or int(idx.max()) < h * w)
    compare(
        lambda x: dl.nn.functional.max_pool2d(_view(case["view"], x), **kw),
        lambda x: F.max_pool2d(_view(case["view"], x), **kw),
        x,
        grad=grad,
    )


def test_max_pool2d_unbatched_indices_and_grad_with_threads(threaded):
    x = rng(4).standard_normal((3, 7, 9)).astype(np.float32)
    x[0, 2, 2] = np.nan
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, return_indices=True)
    compare(
        lambda x: dl.nn.functional.max_pool2d(x, **kw),
        lambda x: F.max_pool2d(x, **kw),
        x,
        grad=False,
    )
    x[0, 2, 2] = 0.5
    compare(
        lambda x: dl.nn.functional.max_pool2d(x, **kw),
        lambda x: F.max_pool2d(x, **kw),
        x,
    )


# ------------------------------------------------------------------ batch norm


@st.composite
def bn_cases(draw):
    nd = draw(st.integers(2, 5))
    n = draw(st.sampled_from([1, 2, 3, 5, 7, 33]))
    spatial = tuple(draw(st.integers(1, 4)) for _ in range(nd - 2))
    if n * math.prod(spatial) < 2:
        n = 2
    return dict(
        shape=(n, draw(st.integers(1, 4)), *spatial),
        dt=draw(DTYPES),
        training=draw(st.booleans()),
        affine=draw(st.booleans()),
        momentum=draw(st.sampled_from([0.1, 0.7, None])),
        permuted=draw(st.booleans()),
        offset=draw(st.sampled_from([0.0, 3.0])),
        seed=draw(st.integers(0, 10**6)),
    )


@FUZZ
@given(bn_cases())
def test_batch_norm_fuzz_follows_torch(threaded_fuzz, case):
    r = rng(case["seed"])
    shape, dt, nd = case["shape"], case["dt"], len(case["shape"])
    c = shape[1]
    # permuted: stored with the axes reversed, viewed back (a non-contiguous input)
    stored = shape[::-1] if case["permuted"] else shape
    x = (r.standard_normal(stored) + case["offset"]).astype(dt)
    w, b = r.standard_normal(c).astype(dt), r.standard_normal(c).astype(dt)
    rm, rv = r.standard_normal(c).astype(dt), (r.random(c) + 0.5).astype(dt)
    dl_rm, dl_rv = dl.tensor(rm.copy()), dl.tensor(rv.copy())
    t_rm, t_rv = torch.tensor(rm.copy()), torch.tensor(rv.copy())
    count = 3  # num_batches_tracked, for the cumulative average (momentum=None)

    def run(lib, running_mean, running_var):
        def f(x, w, b):
            if case["permuted"]:
                x = x.permute(*range(nd - 1, -1, -1))
            kw = dict(training=case["training"], momentum=case["momentum"])
            if case["momentum"] is None:
                if lib is dl:
                    kw["num_batches_tracked"] = dl.tensor(count)
                else:
                    kw["momentum"] = 1 / count
            wb = (w, b) if case["affine"] else (None, None)
            return lib.nn.functional.batch_norm(x, running_mean, running_var, *wb, **kw)

        return f

    tol = _tol(dt)
    compare(run(dl, dl_rm, dl_rv), run(torch, t_rm, t_rv), x, w, b, atol=tol, rtol=tol)
    np.testing.assert_allclose(dl_rm.numpy(), t_rm.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dl_rv.numpy(), t_rv.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_batch_norm_with_a_large_offset_is_as_accurate_as_torch(threaded, dt):
    """Ill-conditioned channels (spread 1e-3 around 1e4): darklib's corrected two-pass
    variance must be at least about as close to the exact result as torch's."""
    for seed, shape in enumerate([(5, 3, 5), (3, 4), (33, 2, 2, 5), (7, 3, 3)]):
        x = (rng(seed).standard_normal(shape) * 1e-3 + 1e4).astype(dt)
        axes = tuple(i for i in range(x.ndim) if i != 1)
        xl = x.astype(np.longdouble)
        mean = xl.mean(axes, keepdims=True)
        var = ((xl - mean) ** 2).mean(axes, keepdims=True)
        exact = ((xl - mean) / np.sqrt(var + 1e-5)).astype(np.float64)
        got = dl.nn.functional.batch_norm(dl.tensor(x), None, None, training=True).numpy()
        ref = F.batch_norm(torch.tensor(x), None, None, training=True).numpy()
        err_dl, err_torch = np.abs(got - exact).max(), np.abs(ref - exact).max()
        assert err_dl <= 2 * err_torch + (1e-6 if dt == np.float32 else 1e-12), (shape, dt)


# ------------------------------------------------------------------ ReLU

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, 1e-45, -1e-45, 3.0, -2.0, 5e-324])


@pytest.mark.parametrize("dt", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("view", ["plain", "transposed", "flipped", "sliced"])
def test_relu_special_values_and_gradients(threaded, dt, view):
    x = np.resize(SPECIAL, (7, 3, 5)).astype(dt)
    upstream = np.array([1.0, np.inf, np.nan, -np.inf, 2.0, -0.0, 5.0])

    def v(t):
        return {
            "plain": lambda: t,
            "transposed": lambda: t.transpose(0, 2),
            "flipped": lambda: t.flip(1),
            "sliced": lambda: t[::2, :, 1:],
        }[view]()

    xd, xt = dl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = dl.nn.functional.relu(v(xd)), F.relu(v(xt))
    assert yd.dtype.name == str(yt.dtype).replace("torch.", "")
    np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy())
    g = np.resize(upstream, tuple(yt.shape)).astype(dt)  # NaN/inf upstream gradients too
    (yd * dl.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())  # NaN == NaN here


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_relu_keeps_the_sign_of_negative_zero(dt):
    x = np.array([-0.0] * 9, dt)
    got = dl.nn.functional.relu(dl.tensor(x)).numpy()
    want = F.relu(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("dt", [np.int8, np.int16, np.int32, np.int64, np.uint8])
def test_relu_of_integers(threaded, dt):
    x = np.arange(-20, 22).reshape(6, 7).astype(dt)
    got, want = dl.nn.functional.relu(dl.tensor(x)), F.relu(torch.tensor(x))
    assert got.dtype.name == str(want.dtype).replace("torch.", "")
    np.testing.assert_array_equal(got.numpy(), want.numpy())


# ------------------------------------------------------------------ matmul and linear


@st.composite
def matmul_cases(draw):
    m, n = draw(st.sampled_from([1, 2, 3, 7, 33])), draw(st.sampled_from([1, 2, 3, 7, 33]))
    k = draw(st.sampled_from([1, 3, 64, 200]))  # 200: K dominates, split along K
    batches = st.sampled_from([(), (1,), (3,), (2, 1), (1, 3), (2, 3)])
    ba, bb = draw(batches), draw(batches)
    if len(ba) == len(bb) == 2 and ba != bb and 1 not in (ba[0], bb[0]):
        bb = bb[1:]
    sa = (k,) if draw(st.integers(0, 6)) == 0 else (*ba, m, k)
    sb = (k,) if draw(st.integers(0, 6)) == 0 else (*bb, k, n)
    return dict(
        sa=sa,
        sb=sb,
        dt=draw(st.sampled_from([np.float32, np.float64, np.int64, np.int32])),
        ta=draw(st.booleans()) and len(sa) >= 2,
        tb=draw(st.booleans()) and len(sb) >= 2,
        seed=draw(st.integers(0, 10**6)),
    )


@FUZZ
@given(matmul_cases())
def test_matmul_fuzz_follows_torch(threaded_fuzz, case):
    r = rng(case["seed"])
    dt = case["dt"]

    def make(shape, transposed):  # transposed: stored swapped, viewed back (non-contiguous)
        a = (r.standard_normal(shape) * 3).astype(dt)
        return np.ascontiguousarray(np.swapaxes(a, -1, -2)) if transposed else a

    a, b = make(case["sa"], case["ta"]), make(case["sb"], case["tb"])

    def f(a, b):
        a = a.transpose(-1, -2) if case["ta"] else a
        b = b.transpose(-1, -2) if case["tb"] else b
        return a @ b

    tol = 1e-10 if dt == np.float64 else 1e-4
    compare(f, f, a, b, atol=tol, rtol=tol)


@FUZZ
@given(
    st.sampled_from([(), (1,), (3,), (2, 5)]),
    st.sampled_from([1, 2, 3, 33]),
    st.sampled_from([1, 5, 300]),
    st.sampled_from([1, 4, 40]),
    DTYPES,
    st.booleans(),
)
def test_linear_fuzz_follows_torch(threaded_fuzz, batch, m, k, n, dt, with_bias):
    r = rng(m * k + n)
    x = r.standard_normal((*batch, m, k)).astype(dt)
    w = r.standard_normal((n, k)).astype(dt)
    b = r.standard_normal(n).astype(dt)
    tol = _tol(dt)
    if with_bias:
        compare(dl.nn.functional.linear, F.linear, x, w, b, atol=tol, rtol=tol)
    else:
        compare(dl.nn.functional.linear, F.linear, x, w, atol=tol, rtol=tol)
    compare(dl.nn.functional.linear, F.linear, x[..., 0, :], w, atol=tol, rtol=tol)  # 1-D


@pytest.mark.parametrize(
    "sa, sb",
    [((0, 5), (5, 3)), ((3, 0), (0, 4)), ((2, 0, 5), (5, 3)), ((0,), (0,)), ((4,), (2, 4, 3))],
)
def test_matmul_with_empty_and_vector_operands(threaded, sa, sb):
    a = rng(0).standard_normal(sa).astype(np.float32)
    b = rng(1).standard_normal(sb).astype(np.float32)
    compare(lambda a, b: a @ b, lambda a, b: a @ b, a, b, atol=1e-4)


@pytest.mark.parametrize("shape", [(7, 500, 3), (3, 400, 400)], ids=["k-split", "rows"])
def test_par_matmul_of_integers_is_exact(threaded, shape):
    m, k, n = shape
    a = rng(2).integers(-1000, 1000, (m, k))
    b = rng(3).integers(-1000, 1000, (k, n))
    np.testing.assert_array_equal(par.matmul(a, b), a @ b)
    out = np.empty((m, n), np.int64)
    assert par.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(out, a @ b)


# ------------------------------------------------------------------ erf and GELU


def _erf_points(dt):
    fi = np.finfo(dt)
    mags = [0.0, fi.smallest_subnormal, 3 * fi.smallest_subnormal, fi.tiny, 1.5 * fi.tiny]
    mags += [fi.eps, 1e-5, 1e-3, 0.1, 0.4999, 0.5, 0.5001, 1, 1.9999, 2, 2.0001, 3.9, 6, 27]
    mags += [*np.geomspace(1e-8, 8, 300), float(fi.max)]
    x = np.array(mags, np.float64).astype(dt)
    return np.concatenate([x, -x])


@pytest.mark.parametrize("dt", [np.float16, np.float32, np.float64])
def test_erf_is_accurate_over_all_magnitudes(dt):
    x = _erf_points(dt)
    got = dl.tensor(x).erf().numpy()
    assert got.dtype == dt
    exact = np.array([math.erf(float(v)) for v in x])
    # float16: correctly rounded; float32: within 4 ulps (measured 2.9; torch: 0.7); float64:
    # a few ulps (the series and continued fraction meet at |x| = 2)
    ulps = {np.float16: 1, np.float32: 4, np.float64: 6}[dt]
    spacing = np.spacing(np.abs(exact).astype(dt)).astype(np.float64)
    err = np.abs(got.astype(np.float64) - exact)
    assert np.all(err <= ulps * spacing), x[np.argmax(err / spacing)]
    np.testing.assert_array_equal(np.signbit(got), np.signbit(x))
    special = np.array([np.inf, -np.inf, np.nan, -0.0], dt)
    np.testing.assert_array_equal(
        dl.tensor(special).erf().numpy(), torch.erf(torch.tensor(special)).numpy()
    )


def test_gelu_exact_in_float64_follows_torch():
    x = np.concatenate([np.linspace(-12, 12, 2001), [-40, -1e-300, 5e-324, 0.0, 1e-8, 1e5]])
    compare(dl.nn.functional.gelu, F.gelu, x, atol=1e-12, rtol=1e-10)
    special = np.array([np.inf, -np.inf, np.nan])
    got = dl.nn.functional.gelu(dl.tensor(special)).numpy()
    np.testing.assert_array_equal(got, F.gelu(torch.tensor(special)).numpy())


def test_gelu_negative_tail_float64_against_erfc():
    """GELU(x) = x/2 erfc(-x/sqrt 2): 1 + erf cancels for negative x, torch too (same formula),
    so compare with the exact value at the accuracy a few ulps of erf allow."""
    x = np.linspace(-6, -0.5, 200)
    got = dl.nn.functional.gelu(dl.tensor(x)).numpy()
    exact = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(got, exact, rtol=0, atol=5e-15)


def test_gelu_float16_negative_tail():
    x = np.linspace(-5, -2, 61).astype(np.float16)
    got = dl.nn.functional.gelu(dl.tensor(x)).numpy().astype(np.float64)
    exact = np.array([0.5 * float(v) * math.erfc(-float(v) / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(got, exact, rtol=2e-3, atol=1e-7)


# ------------------------------------------------------------------ a fixture for @given

# hypothesis does not re-run function-scoped fixtures per example; this one is applied once
# per test, and the thresholds it sets are the same for every example.


@pytest.fixture
def threaded_fuzz(threaded, monkeypatch):
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", conv_ops._CHUNK_BYTES)  # restored after
    yield
