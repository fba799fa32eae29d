"""darklib's CPU thread pool (darklib.kernels.parallel): the split ops give torch's results,
pieces cover their range, errors reach the caller, and the thread-count API.

The ``threaded`` fixture drops the size thresholds to zero, so that the small test inputs
take the same split paths as a real training step does."""

import contextlib
import math
import os
import platform
import select
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import darklib as dl
from darklib.kernels import parallel as par
from darklib.ops import conv as conv_ops
from tests.oracle import assert_close, compare, rng
from tests.test_conv import CONV_CASES

pytestmark = pytest.mark.skipif(
    not par.owns_blas, reason="this NumPy's BLAS has no per-thread control"
)


@pytest.fixture
def threaded(monkeypatch):
    monkeypatch.setattr(par, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(par, "SPLIT_MACS", 0)
    monkeypatch.setattr(par, "BLAS_OWN_MACS", 0)
    monkeypatch.setattr(par, "QUIET_SECONDS", math.inf)  # never hand products to BLAS
    before = par.get_num_threads()
    par.set_num_threads(3)  # an odd count: uneven pieces
    yield
    par.set_num_threads(before)


@given(st.integers(0, 500), st.integers(1, 9))
def test_ranges_cover_the_range_in_order(n, parts):
    pieces = par.ranges(n, parts)
    assert len(pieces) == (min(parts, n) if n else 1)
    flat = [i for s, e in pieces for i in range(s, e)]
    assert flat == list(range(n))
    sizes = [e - s for s, e in pieces]
    assert max(sizes) - min(sizes) <= 1


def test_parallel_for_runs_every_piece_and_raises_the_first_error(threaded):
    seen = []
    par.parallel_for(lambda s, e: seen.append((s, e)), 10, 10)
    assert sorted(seen) == par.ranges(10, 3)

    def fail(s, e):
        if s > 0:
            raise ValueError(f"piece {s}")

    with pytest.raises(ValueError, match="piece"):
        par.parallel_for(fail, 9, 9)
    # the pool still works after an error
    out = par.map_reduce(lambda s, e: sum(range(s, e)), 100, 100)
    assert sum(out) == sum(range(100)) and len(out) == 3


def test_nested_regions_run_inline(threaded):
    inner = []
    par.parallel_for(lambda s, e: inner.append(par.threads_for(8, 1 << 30)), 3, 3)
    assert inner == [1, 1, 1]


@pytest.mark.parametrize("chunk", [1, 1 << 26], ids=["image-chunks", "one-chunk"])
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv2d_split_over_threads_matches_torch(threaded, monkeypatch, case, chunk):
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", chunk)  # one image per chunk, or all
    xs, ws, kw = CONV_CASES[case]
    r = rng(case)
    x = r.standard_normal(xs).astype(np.float32)
    w = r.standard_normal(ws).astype(np.float32)
    b = r.standard_normal(ws[0]).astype(np.float32)
    compare(
        lambda x, w, b: dl.nn.functional.conv2d(x, w, b, **kw),
        lambda x, w, b: F.conv2d(x, w, b, **kw),
        x,
        w,
        b,
        atol=1e-4,
    )


def test_conv_transpose2d_split_over_threads_matches_torch(threaded):
    r = rng(3)
    x = r.standard_normal((5, 4, 9, 9)).astype(np.float32)
    w = r.standard_normal((4, 3, 4, 4)).astype(np.float32)
    kw = dict(stride=2, padding=1)
    compare(
        lambda x, w: dl.nn.functional.conv_transpose2d(x, w, **kw),
        lambda x, w: F.conv_transpose2d(x, w, **kw),
        x,
        w,
        atol=1e-4,
    )


@pytest.mark.parametrize("shape", [(7, 3, 5, 4), (5, 6), (4, 2, 9)])
def test_batch_norm_split_over_threads_matches_torch(threaded, shape):
    r = rng(4)
    x = (r.standard_normal(shape) * 3 + 50).astype(np.float32)  # a large offset
    c = shape[1]
    w = r.standard_normal(c).astype(np.float32)
    b = r.standard_normal(c).astype(np.float32)
    rm_d, rv_d = dl.zeros(c), dl.ones(c)
    rm_t, rv_t = torch.zeros(c), torch.ones(c)
    compare(
        lambda x, w, b: dl.nn.functional.batch_norm(x, rm_d, rv_d, w, b, training=True),
        lambda x, w, b: F.batch_norm(x, rm_t, rv_t, w, b, training=True),
        x,
        w,
        b,
        atol=1e-4,
    )
    assert_close(rm_d, rm_t, 1e-5, 1e-5, "running_mean")
    assert_close(rv_d, rv_t, 1e-4, 1e-5, "running_var")


def test_relu_split_over_threads_matches_torch_with_nan_and_inf(threaded):
    x = rng(5).standard_normal((6, 5, 7)).astype(np.float32)
    x[0, 0, :3] = [np.nan, 0.0, -0.0]
    compare(dl.nn.functional.relu, F.relu, x)
    # an infinite upstream gradient at a clamped input gives 0 there, not inf * 0 = NaN
    xd, xt = dl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    g = np.ones_like(x)
    g[1, 1, :] = np.inf
    g[2, 2, :] = np.nan
    dl.nn.functional.relu(xd).backward(dl.tensor(g))
    F.relu(xt).backward(torch.tensor(g))
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize(
    "kw",
    [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(5, 4))],
)
def test_max_pool_split_over_threads_matches_torch(threaded, kw):
    x = rng(6).integers(-3, 3, (5, 3, 10, 8)).astype(np.float32)  # ties
    compare(
        lambda x: dl.nn.functional.max_pool2d(x, return_indices=True, **kw),
        lambda x: F.max_pool2d(x, return_indices=True, **kw),
        x,
    )


@pytest.mark.parametrize(
    "sa, sb",
    [((40, 7), (7, 9)), ((6, 8), (8, 50)), ((5, 300), (300, 6)), ((4, 3, 5), (5, 6))],
    ids=["rows", "columns", "inner", "batched"],
)
def test_matmul_split_over_threads_matches_torch(threaded, sa, sb):
    r = rng(7)
    a = r.standard_normal(sa).astype(np.float32)
    b = r.standard_normal(sb).astype(np.float32)
    compare(lambda a, b: a @ b, lambda a, b: a @ b, a, b, atol=1e-4)
    w = r.standard_normal((11, sa[-1])).astype(np.float32)
    compare(dl.nn.functional.linear, F.linear, a, w, atol=1e-4)


def test_matmul_into_out_and_transposed_operands(threaded):
    r = rng(8)
    a = r.standard_normal((300, 20)).astype(np.float32)
    b = r.standard_normal((300, 30)).astype(np.float32)
    out = np.full((20, 30), np.nan, np.float32)
    res = par.matmul(a.T, b, out=out)
    assert res is out
    np.testing.assert_allclose(out, a.T @ b, rtol=1e-5, atol=1e-4)


def test_training_step_is_the_same_with_one_or_several_threads():
    def run(threads):
        par.set_num_threads(threads)
        dl.manual_seed(0)
        net = dl.nn.Sequential(
            dl.nn.Conv2d(3, 8, 3, padding=1),
            dl.nn.BatchNorm2d(8),
            dl.nn.ReLU(),
            dl.nn.MaxPool2d(2),
            dl.nn.Flatten(),
            dl.nn.Linear(8 * 16 * 16, 5),
        )
        opt = dl.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        x = dl.tensor(rng(9).standard_normal((64, 3, 32, 32)).astype(np.float32))
        y = dl.tensor(rng(9).integers(0, 5, 64))
        for _ in range(3):
            opt.zero_grad()
            loss = dl.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
        return loss.item(), [p.detach().numpy().copy() for p in net.parameters()]

    before = par.get_num_threads()
    try:
        l1, p1 = run(1)
        l2, p2 = run(2)
    finally:
        par.set_num_threads(before)
    assert abs(l1 - l2) < 1e-4
    for a, b in zip(p1, p2):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_thread_count_api():
    before = dl.get_num_threads()
    assert before >= 1
    try:
        dl.set_num_threads(1)
        assert dl.get_num_threads() == 1
        assert par.threads_for(100, 1 << 30) == 1
    finally:
        dl.set_num_threads(before)
    for bad in (0, -2, 1.5, True, "2"):
        with pytest.raises(ValueError, match="set_num_threads"):
            dl.set_num_threads(bad)


def test_host_allocator_tuning_can_be_turned_off():
    code = "import darklib.kernels.parallel as p; print(p.host_allocator_tuned)"
    env = dict(os.environ, DARKLIB_HOST_ALLOCATOR="system")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        env.pop("DARKLIB_HOST_ALLOCATOR")
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "True"


@pytest.mark.parametrize("with_threads", [False, True])
def test_empty_batches_follow_torch(request, with_threads):
    if with_threads:
        request.getfixturevalue("threaded")
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = rng(10).standard_normal((4, 3, 3, 3)).astype(np.float32)
    compare(
        lambda x, w: dl.nn.functional.conv2d(x, w, padding=1),
        lambda x, w: F.conv2d(x, w, padding=1),
        x,
        w,
    )
    compare(lambda x: dl.nn.functional.max_pool2d(x, 2), lambda x: F.max_pool2d(x, 2), x)
    compare(dl.nn.functional.relu, F.relu, x)


def test_blas_thread_count_is_restored_after_darklib_ops(threaded, monkeypatch):
    """OpenBLAS's thread count is process-wide: darklib sets it to 1 only while it runs."""
    monkeypatch.setattr(par, "_workers", [])  # fresh pool threads start during the test

    probe = threading.Lock()  # the probe sets and restores the count: one at a time

    def blas_threads():
        with probe:
            prev = par._set_blas_threads(5)
            par._set_blas_threads(prev)
        return prev

    original = par._set_blas_threads(2)  # a known count to come back to
    before = blas_threads()
    x = dl.randn(6, 3, 10, 10, requires_grad=True)
    w = dl.randn(4, 3, 3, 3, requires_grad=True)
    dl.nn.functional.conv2d(x, w, padding=1).relu().sum().backward()
    a = np.ones((40, 30), np.float32)
    par.matmul(a, a.T)
    seen = []
    par.parallel_for(lambda s, e: seen.append(blas_threads()), 3, 3)
    after = blas_threads()
    par._set_blas_threads(original)
    assert seen == [1, 1, 1]  # inside a region, every thread sees one BLAS thread
    assert before == after == 2


@pytest.mark.parametrize("with_threads", [False, True])
def test_batch_norm_of_a_permuted_view_follows_torch(request, with_threads):
    if with_threads:
        request.getfixturevalue("threaded")
    x = rng(11).standard_normal((4, 3, 5, 6)).astype(np.float32)
    compare(
        lambda x: dl.nn.functional.batch_norm(x.permute(0, 3, 2, 1), None, None, training=True),
        lambda x: F.batch_norm(x.permute(0, 3, 2, 1), None, None, training=True),
        x,
    )


def test_products_go_to_blas_threads_only_while_no_region_runs(monkeypatch):
    """An MLP's products run on BLAS's own (spinning, quick to start) threads; once darklib
    runs parallel regions, products stay on one BLAS thread or are split by the pool. A
    batch of products never goes to BLAS's threads (one hand-off per matrix)."""
    monkeypatch.setattr(par, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(par, "BLAS_OWN_MACS", 1000)
    monkeypatch.setattr(par, "_last_region", -math.inf)
    monkeypatch.setattr(par, "_blas_slow_until", -math.inf)
    monkeypatch.setattr(par, "_num_threads", 2)  # as on a 2-core machine, whatever this one has
    single = []

    @contextlib.contextmanager
    def recording():
        single.append(True)
        yield

    monkeypatch.setattr(par, "_single_blas", recording)
    big, small = np.ones((20, 20), np.float32), np.ones((5, 5), np.float32)
    par.matmul(big, big)  # 8,000 MACs, darklib quiet: BLAS's threads
    assert single == []
    par.matmul(small, small)  # 125 MACs: one BLAS thread, no wake-up
    assert single == [True]
    single.clear()
    batch = np.ones((3, 20, 20), np.float32)
    np.testing.assert_array_equal(par.matmul(batch, batch), np.matmul(batch, batch))
    assert single, "a batch of products ran on BLAS's own threads"
    par.parallel_for(lambda s, e: None, 4, 4)  # a region: no longer quiet
    single.clear()
    par.matmul(big, big)
    assert single == [True]


def test_a_slow_product_on_blas_threads_sends_products_to_the_pool(monkeypatch):
    """BLAS's spinning threads collapse next to other busy threads: one product that runs
    far below a core's speed there keeps darklib's products off them for a while."""
    monkeypatch.setattr(par, "BLAS_OWN_MACS", 1000)
    monkeypatch.setattr(par, "_last_region", -math.inf)
    monkeypatch.setattr(par, "_blas_slow_until", -math.inf)
    monkeypatch.setattr(par, "_num_threads", 2)
    monkeypatch.setattr(par, "SLOW_MACS_PER_S", 1e30)  # every product counts as slow
    single = []

    @contextlib.contextmanager
    def recording():
        single.append(True)
        yield

    monkeypatch.setattr(par, "_single_blas", recording)
    big = np.ones((20, 20), np.float32)
    par.matmul(big, big)  # on BLAS's threads, and found slow
    assert single == [] and not par._quiet()
    par.matmul(big, big)
    assert single == [True]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_gets_a_fresh_pool(threaded):
    par.parallel_for(lambda s, e: None, 4, 4)  # the parent's pool threads exist now
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its pool must start new threads, not wait on the parent's
        try:
            out = par.map_reduce(lambda s, e: e - s, 10, 10)
            os.write(w, str(sum(out)).encode())
        finally:
            os._exit(0)
    os.close(w)
    ready, _, _ = select.select([r], [], [], 30)
    if not ready:  # the child hangs on the parent's vanished threads
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert ready, "the forked child's parallel region never finished"
    assert os.read(r, 16) == b"10" and status == 0


def test_chunks_are_claimed_by_free_threads_and_returned_in_order(threaded):
    """A thread that is slow to start takes fewer chunks; results keep the chunk order."""
    who = {}

    def chunk(s, e):
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.002)  # a slow pool thread: the caller takes up its share
        who[s] = threading.current_thread().name
        return list(range(s, e))

    out = par.map_reduce(chunk, 23, 23, block=2)
    assert out == [list(range(s, min(23, s + 2))) for s in range(0, 23, 2)]
    main_chunks = sum(name == threading.main_thread().name for name in who.values())
    assert main_chunks > len(out) // 3  # more than a static third of the chunks


def test_split_ops_on_permuted_views_follow_torch(threaded):
    """Non-contiguous inputs (a permuted view) through every split op and its gradient."""
    x = rng(12).standard_normal((7, 6, 5, 4)).astype(np.float32)  # viewed as (4, 5, 6, 7)
    w = rng(13).standard_normal((3, 5, 3, 3)).astype(np.float32)

    def net(lib, x, w):
        f = lib.nn.functional
        v = x.permute(3, 2, 1, 0)
        y = f.conv2d(v, w, padding=1)
        y = f.batch_norm(y, None, None, training=True)
        return f.max_pool2d(f.relu(y), 2)

    compare(lambda x, w: net(dl, x, w), lambda x, w: net(torch, x, w), x, w, atol=1e-4)


@pytest.mark.parametrize("with_threads", [False, True])
@pytest.mark.parametrize("slope", [0.2, 0.01, 1.0, 1.5, -0.3, 0.0])
def test_leaky_relu_follows_torch_on_special_values(request, with_threads, slope):
    if with_threads:
        request.getfixturevalue("threaded")
    special = [-np.inf, -2.0, -0.0, 0.0, 1e-30, -1e-30, 3.0, np.inf, np.nan]
    x = np.resize(np.array(special, np.float32), (5, 4, 3))
    x[1:] += rng(14).standard_normal((4, 4, 3)).astype(np.float32)
    g = np.resize(np.array([1.0, -2.0, np.inf, np.nan, 0.5], np.float32), x.shape)
    xd, xt = dl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # inf * 0 (slope 0), as in NumPy
        yd = dl.nn.functional.leaky_relu(xd, slope)
        yd.backward(dl.tensor(g))
    yt = F.leaky_relu(xt, slope)
    yt.backward(torch.tensor(g))
    for d, t in ((yd, yt), (xd.grad, xt.grad)):
        d, t = d.detach().numpy(), t.detach().numpy()
        np.testing.assert_array_equal(d, t)  # NaN == NaN here
        np.testing.assert_array_equal(np.signbit(d), np.signbit(t))


_KERNELS_PROBE = (
    "import os, numpy as np\n"  # NumPy (and so OpenBLAS) first, as most scripts do
    "import darklib\n"
    "from darklib.kernels import parallel as par\n"
    "a = np.random.default_rng(0).standard_normal((300, 200)).astype(np.float32)\n"
    "b = np.random.default_rng(1).standard_normal((200, 100)).astype(np.float32)\n"
    "err = np.abs(a @ b - a.astype(np.float64) @ b.astype(np.float64)).max()\n"
    "print(par.blas_kernels(), os.environ.get('OPENBLAS_CORETYPE'), err < 1e-3)\n"
)


def _kernels_in_child(coretype):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    out = subprocess.run(
        [sys.executable, "-c", _KERNELS_PROBE], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


@pytest.mark.skipif(par.blas_kernels() == "unknown", reason="OpenBLAS does not name its kernels")
def test_blas_kernels_are_switched_only_on_zen4_and_never_against_the_users_choice():
    """On Zen 4 darklib moves OpenBLAS from its SkylakeX to its Haswell kernels (faster
    convolutions there), even when NumPy loaded OpenBLAS first; products stay right, and
    an OPENBLAS_CORETYPE the user set is kept."""
    kernels, variable, right = _kernels_in_child(None)
    assert right == "True"
    if par._is_zen4():
        assert (kernels, variable) == ("Haswell", "Haswell")
    else:  # left as OpenBLAS chose
        assert variable == "None"
    if platform.machine() in ("x86_64", "AMD64"):  # AVX kernels run on any x86-64 CI host
        assert _kernels_in_child("Sandybridge") == ["Sandybridge", "Sandybridge", "True"]


def _affinity_in_pieces(n_pieces: int) -> dict:
    """Each piece's CPU set, keyed by the piece's start."""
    seen = {}
    par.parallel_for(lambda s, e: seen.update({s: os.sched_getaffinity(0)}), n_pieces, 1 << 30)
    return seen


needs_two_cpus = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs per-thread CPU affinity and two CPUs",
)


@needs_two_cpus
def test_a_region_holds_its_threads_on_distinct_cpus_and_then_frees_the_caller(monkeypatch):
    before, mask = par.get_num_threads(), os.sched_getaffinity(0)
    monkeypatch.setattr(par, "MIN_ELEMENTS", 0)
    par.set_num_threads(2)
    try:
        cpus = par._cpus
        assert cpus == sorted(mask)
        assert _affinity_in_pieces(2) == {0: {cpus[0]}, 1: {cpus[1]}}
        assert os.sched_getaffinity(0) == mask  # the caller is free again
        # a caller restricted by the user gets its own mask back, not the process's
        os.sched_setaffinity(0, {cpus[1]})
        try:
            _affinity_in_pieces(2)
            assert os.sched_getaffinity(0) == {cpus[1]}
        finally:
            os.sched_setaffinity(0, mask)
        # more threads than CPUs: nobody is held (workers keep their CPU from their start)
        monkeypatch.setattr(par, "_cpus", cpus[:1])
        assert _affinity_in_pieces(2)[0] == mask
    finally:
        par.set_num_threads(before)


@needs_two_cpus
def test_a_second_concurrent_region_leaves_its_caller_where_it_is(monkeypatch):
    before, mask = par.get_num_threads(), os.sched_getaffinity(0)
    monkeypatch.setattr(par, "MIN_ELEMENTS", 0)
    par.set_num_threads(2)
    first_running, second_done = threading.Event(), threading.Event()
    seen = {}

    def first(s, e):
        if s == 0:
            seen["first"] = os.sched_getaffinity(0)
            first_running.set()
            second_done.wait(30)

    def second_caller():
        first_running.wait(30)
        seen["second"] = _affinity_in_pieces(2)[0]
        second_done.set()

    try:
        # (a thread inherits the mask of the thread that starts it: start it outside)
        t = threading.Thread(target=second_caller)
        t.start()
        par.parallel_for(first, 2, 1 << 30)
        t.join(30)
        assert seen == {"first": {par._cpus[0]}, "second": mask}
        assert os.sched_getaffinity(0) == mask
    finally:
        par.set_num_threads(before)


def test_pinning_can_be_turned_off():
    code = "import darklib.kernels.parallel as p; print(p._cpus)"
    env = dict(os.environ, DARKLIB_PIN_THREADS="0")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
