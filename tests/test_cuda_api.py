"""dl.cuda (devices, streams, events) and dl.backends, as torch.cuda and torch.backends.

The GPU half runs where CuPy finds a device; without one, the same calls must either give
torch's answer (0 bytes, no devices) or say that CUDA is missing."""

import importlib

import numpy as np
import pytest
import torch

import darklib as dl

gpu = pytest.mark.skipif(not dl.cuda.is_available(), reason="no GPU")
no_gpu = pytest.mark.skipif(dl.cuda.is_available(), reason="a GPU is present")


@pytest.fixture(autouse=True)
def _restore_flags():
    precision = dl.get_float32_matmul_precision()
    cudnn = {n: getattr(dl.backends.cudnn, n) for n in ("enabled", "benchmark", "deterministic")}
    yield
    dl.set_float32_matmul_precision(precision)
    for n, v in cudnn.items():
        setattr(dl.backends.cudnn, n, v)


def test_backends_answer_as_torch_on_a_machine_without_them():
    assert dl.backends.mps.is_available() is torch.backends.mps.is_available() is False
    assert dl.backends.mps.is_built() is False
    assert dl.backends.cudnn.is_available() is False and dl.backends.cudnn.version() is None
    assert dl.backends.cpu.get_cpu_capability() == torch.backends.cpu.get_cpu_capability()
    assert dl.backends.cuda.is_built() == (importlib.util.find_spec("cupy") is not None)


def test_cudnn_flags_are_settable_module_attributes_and_flags_restores_them():
    import darklib.backends.cudnn as cudnn

    assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic) == (True, False, False)
    cudnn.benchmark = True
    assert dl.backends.cudnn.benchmark is True
    with cudnn.flags(enabled=False, deterministic=True):
        assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic) == (False, False, True)
    assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic) == (True, True, False)


def test_allow_tf32_is_the_float32_matmul_precision_as_in_torch():
    before = torch.get_float32_matmul_precision()
    try:
        for value in (True, False):
            torch.backends.cuda.matmul.allow_tf32 = value
            dl.backends.cuda.matmul.allow_tf32 = value
            assert dl.get_float32_matmul_precision() == torch.get_float32_matmul_precision()
        dl.set_float32_matmul_precision("medium")
        assert dl.backends.cuda.matmul.allow_tf32 is True
        dl.set_float32_matmul_precision("highest")
        assert dl.backends.cuda.matmul.allow_tf32 is False
    finally:
        torch.set_float32_matmul_precision(before)


def test_out_of_memory_error_names():
    assert dl.OutOfMemoryError is dl.cuda.OutOfMemoryError
    assert issubclass(dl.OutOfMemoryError, MemoryError)


def test_seeding_through_dl_cuda_seeds_darklib():
    dl.cuda.manual_seed_all(123)
    assert dl.cuda.initial_seed() == 123
    a = dl.rand(3)
    dl.cuda.manual_seed(123)
    assert np.array_equal(a.numpy(), dl.rand(3).numpy())


@no_gpu
@pytest.mark.parametrize(
    "call",
    [
        lambda: dl.cuda.current_device(),
        lambda: dl.cuda.get_device_name(),
        lambda: dl.cuda.get_device_properties(0),
        lambda: dl.cuda.mem_get_info(),
        lambda: dl.cuda.set_device(0),
        lambda: dl.cuda.init(),
        lambda: dl.cuda.Event(enable_timing=True),
        lambda: dl.cuda.Stream(),
        lambda: dl.cuda.current_stream(),
    ],
)
def test_without_a_gpu_device_queries_say_cuda_is_missing(call):
    with pytest.raises(RuntimeError, match="CUDA"):
        call()


@no_gpu
def test_without_a_gpu_the_counters_are_zero_and_no_ops_pass():
    assert dl.cuda.device_count() == 0 and not dl.cuda.is_initialized()
    assert dl.cuda.memory_allocated() == dl.cuda.memory_reserved() == 0
    dl.cuda.synchronize()
    dl.cuda.empty_cache()
    dl.cuda.set_device(-1)  # a negative index changes nothing, as torch
    with dl.cuda.device(None), dl.cuda.stream(None):
        pass


@gpu
def test_device_queries_on_the_gpu():
    dl.cuda.init()
    assert dl.cuda.is_initialized()
    assert dl.cuda.current_device() == 0
    p = dl.cuda.get_device_properties(0)
    assert p.name == dl.cuda.get_device_name() and p.total_memory > 0
    assert dl.cuda.get_device_capability() == (p.major, p.minor) and p.major >= 3
    free, total = dl.cuda.mem_get_info()
    assert 0 < free <= total == p.total_memory


@gpu
def test_set_device_picks_where_cuda_tensors_go():
    last = dl.cuda.device_count() - 1
    with dl.cuda.device(last):
        assert dl.cuda.current_device() == last
        assert dl.zeros(2, device="cuda").device == dl.device("cuda", last)
    assert dl.cuda.current_device() == 0
    assert dl.zeros(2, device="cuda").device == dl.device("cuda", 0)


@gpu
def test_events_time_work_queued_on_a_stream():
    x = dl.randn(512, 512, device="cuda")
    s = dl.cuda.Stream()
    start, end = dl.cuda.Event(enable_timing=True), dl.cuda.Event(enable_timing=True)
    with dl.cuda.stream(s):
        assert dl.cuda.current_stream() == s
        start.record()
        y = x @ x
        end.record()
    assert dl.cuda.current_stream() != s
    end.synchronize()
    assert end.query() and s.query()
    assert start.elapsed_time(end) >= 0.0
    np.testing.assert_allclose(y.cpu().numpy(), x.cpu().numpy() @ x.cpu().numpy(), rtol=1e-3)
    with pytest.raises(RuntimeError, match="enable_timing"):
        dl.cuda.Event().elapsed_time(end)


@gpu
def test_streams_wait_for_each_other():
    a, b = dl.cuda.Stream(), dl.cuda.Stream()
    with dl.cuda.stream(a):
        x = dl.ones(1 << 20, device="cuda") * 2
    b.wait_stream(a)
    with dl.cuda.stream(b):
        total = x.sum()
    b.synchronize()
    assert total.item() == 2 * (1 << 20)
    assert dl.cuda.default_stream() != a


@gpu
def test_a_streams_block_runs_on_its_gpu_and_events_follow_their_stream():
    last = dl.cuda.device_count() - 1
    s = dl.cuda.Stream(device=last)
    e = dl.cuda.Event()
    assert e.query()  # never recorded: done, and waiting for it does nothing (as torch)
    e.wait()
    e.synchronize()
    with dl.cuda.stream(s):  # (CuPy alone refuses a stream of another GPU than the current)
        assert dl.cuda.current_device() == last and dl.cuda.current_stream() == s
        x = dl.ones(4, device="cuda") * 3
        e.record()
    assert x.device == dl.device("cuda", last) and dl.cuda.current_device() == 0
    e.synchronize()
    assert e.query() and x.sum().item() == 12.0
    with pytest.raises(RuntimeError, match="recorded"):
        dl.cuda.Event(enable_timing=True).elapsed_time(dl.cuda.Event(enable_timing=True))
    free, total = dl.cuda.mem_get_info(last)
    assert 0 < free <= total
    dl.cuda.synchronize(last)
