"""torch's top-level names beyond the ops: the torch.conv2d / torch.dropout forms of the
functional ops, the in-place functions, print options, the RNG state and small queries;
each against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import darklib as dl
from darklib._namespace import _INPLACE
from tests.oracle import DEVICES, rng


def _pair(*shape, positive=False, seed=0):
    a = rng(seed).standard_normal(shape)
    if positive:
        a = np.abs(a) + 0.5
    return dl.tensor(a, dtype=dl.float64), torch.tensor(a, dtype=torch.float64)


def _close(d, t):
    if isinstance(t, tuple):
        assert len(d) == len(t)
        for a, b in zip(d, t):
            _close(a, b)
        return
    np.testing.assert_allclose(d.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)


def _functional_cases():
    x4d, x4t = _pair(2, 4, 6, 6)
    x3d, x3t = _pair(2, 4, 9, seed=1)
    w2d, w2t = _pair(3, 4, 3, 3, seed=2)
    w1d, w1t = _pair(3, 4, 2, seed=3)
    g, gt = _pair(4, positive=True, seed=4)
    emb, embt = _pair(7, 3, seed=5)
    idx = [[1, 2], [6, 0]]
    return {
        "conv2d": (lambda L, x, w: L.conv2d(x, w, None, 2, 1), (x4d, w2d), (x4t, w2t)),
        "conv1d": (lambda L, x, w: L.conv1d(x, w, padding=1, dilation=2), (x3d, w1d), (x3t, w1t)),
        "conv_transpose2d": (
            lambda L, x, w: L.conv_transpose2d(x, w, None, 2, 1, 1),
            (x4d, w2d.transpose(0, 1)[:, :3].contiguous()),
            (x4t, w2t.transpose(0, 1)[:, :3].contiguous()),
        ),
        "max_pool1d": (lambda L, x: L.max_pool1d(x, 3, [], 1, 1, True), (x3d,), (x3t,)),
        "max_pool2d": (lambda L, x: L.max_pool2d(x, 2), (x4d,), (x4t,)),
        "max_pool1d_with_indices": (
            lambda L, x: L.max_pool1d_with_indices(x, 2, 2),
            (x3d,),
            (x3t,),
        ),
        "adaptive_max_pool1d": (lambda L, x: L.adaptive_max_pool1d(x, 4), (x3d,), (x3t,)),
        "avg_pool1d": (lambda L, x: L.avg_pool1d(x, 3, 2, 1), (x3d,), (x3t,)),
        "dropout_eval": (lambda L, x: L.dropout(x, 0.5, False), (x3d,), (x3t,)),
        "feature_dropout_eval": (lambda L, x: L.feature_dropout(x, 0.5, False), (x4d,), (x4t,)),
        "layer_norm": (
            lambda L, x, g: L.layer_norm(x, [9], None, None, 1e-5, True),
            (x3d, g),
            (x3t, gt),
        ),
        "group_norm": (lambda L, x, g: L.group_norm(x, 2, g, g, 1e-5, True), (x4d, g), (x4t, gt)),
        "batch_norm": (
            lambda L, x, g: L.batch_norm(x, g, g, None, None, True, 0.1, 1e-5, True),
            (x4d, g),
            (x4t, gt),
        ),
        "instance_norm": (
            lambda L, x, g: L.instance_norm(x, g, g, None, None, True, 0.1, 1e-5, True),
            (x4d, g),
            (x4t, gt),
        ),
        "embedding": (
            lambda L, w: L.embedding(w, L.tensor(idx), 2),
            (emb,),
            (embt,),
        ),
        "selu": (lambda L, x: L.selu(x), (x3d,), (x3t,)),
        "celu": (lambda L, x: L.celu(x, 2.0), (x3d,), (x3t,)),
        "threshold": (lambda L, x: L.threshold(x, 0.1, 20.0), (x3d,), (x3t,)),
        "rrelu_eval": (lambda L, x: L.rrelu(x), (x3d,), (x3t,)),
        "prelu": (lambda L, x, g: L.prelu(x, g), (x4d, g), (x4t, gt)),
        "hardshrink": (lambda L, x: L.hardshrink(x, 0.3), (x3d,), (x3t,)),
        "pixel_shuffle": (lambda L, x: L.pixel_shuffle(x, 2), (x4d,), (x4t,)),
        "pixel_unshuffle": (lambda L, x: L.pixel_unshuffle(x, 3), (x4d,), (x4t,)),
        "channel_shuffle": (lambda L, x: L.channel_shuffle(x, 2), (x4d,), (x4t,)),
        "cosine_similarity": (
            lambda L, x, y: L.cosine_similarity(x, y, 2),
            (x3d, x3d * 2 + 1),
            (x3t, x3t * 2 + 1),
        ),
        "pairwise_distance": (
            lambda L, x, y: L.pairwise_distance(x, y, 3.0),
            (x3d, x3d.flip(0)),
            (x3t, x3t.flip(0)),
        ),
        "rms_norm": (lambda L, x: L.rms_norm(x, [9]), (x3d,), (x3t,)),
        "constant_pad_nd": (lambda L, x: L.constant_pad_nd(x, [1, 2], 3.0), (x3d,), (x3t,)),
        "fill": (lambda L, x: L.fill(x, 2.5), (x3d,), (x3t,)),
    }


@pytest.mark.parametrize("name", list(_functional_cases()))
def test_top_level_functional_forms_match_torch_with_gradients(name):
    fn, dargs, targs = _functional_cases()[name]
    dargs = [a.detach().requires_grad_(True) for a in dargs]
    targs = [a.detach().requires_grad_(True) for a in targs]
    d, t = fn(dl, *dargs), fn(torch, *targs)
    _close(d, t)
    first = (lambda o: o[0]) if isinstance(t, tuple) else (lambda o: o)
    (first(d) ** 2).sum().backward()
    (first(t) ** 2).sum().backward()
    for a, b in zip(dargs, targs):
        if b.grad is not None:
            _close(a.grad, b.grad)


def test_top_level_dropout_needs_train_as_torch_and_drops_in_training():
    for L in (dl, torch):
        with pytest.raises(TypeError):
            L.dropout(L.ones(4), 0.5)
    dl.manual_seed(0)
    y = dl.dropout(dl.ones(1000), 0.25, True)
    kept = y.numpy() != 0
    assert 0.65 < kept.mean() < 0.85
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.75)
    # feature_dropout drops whole channels
    z = dl.feature_dropout(dl.ones(8, 16, 5), 0.5, True).numpy()
    assert all(len(np.unique(z[i, c])) == 1 for i in range(8) for c in range(16))


_INPLACE_ARGS = {
    "clamp_": (-0.5, 0.5),
    "clamp_max_": (0.2,),
    "clamp_min_": (0.2,),
    "clip_": (-0.1, 0.1),
    "fill_": (3.0,),
    "gcd_": None,
    "lcm_": None,
    "index_put_": None,
    "resize_as_": None,
    "detach_": None,
    "addmv_": None,
    "ldexp_": None,
    "xlogy_": None,
    "logit_": (0.1,),
    "round_": (),
}


@pytest.mark.parametrize("name", _INPLACE)
def test_in_place_functions_change_their_input_as_torch(name):
    args = _INPLACE_ARGS.get(name, ())
    if args is None:  # (methods with tensor arguments: the call itself is what is checked)
        assert callable(getattr(dl, name)) and hasattr(dl.Tensor, name)
        return
    kind = (
        "unit"
        if name.startswith(
            ("acos", "asin", "atanh", "arccos", "arcsin", "arctanh", "logit", "erfinv")
        )
        else "pos"
    )
    a = rng(1).uniform(0.05, 0.95, 6) if kind == "unit" else rng(1).uniform(1.1, 3.0, 6)
    d, t = dl.tensor(a), torch.tensor(a, dtype=torch.float32)
    out_d, out_t = getattr(dl, name)(d, *args), getattr(torch, name)(t, *args)
    assert out_d is d and out_t is t
    np.testing.assert_allclose(d.numpy(), t.numpy(), rtol=2e-6, atol=1e-6)


def test_in_place_function_refuses_a_non_tensor():
    with pytest.raises(TypeError, match=r"relu_.*must be Tensor"):
        dl.relu_([1.0, -1.0])


@pytest.mark.parametrize(
    "options",
    [
        {"precision": 2},
        {"precision": 7},
        {"threshold": 5},
        {"edgeitems": 1, "threshold": 10},
        {"linewidth": 30},
        {"profile": "short"},
        {"sci_mode": True},
        {"sci_mode": False},
        {"profile": "full", "linewidth": 120},
    ],
)
def test_set_printoptions_prints_as_torch(options):
    values = [
        np.array([1.12345, 2.5, 1e-5]),
        np.arange(40, dtype=np.float32).reshape(5, 8) / 3,
        np.array([1.0, 100000.0]),
        np.arange(1500, dtype=np.float32),
        np.array([[0.0, -1.5], [np.inf, np.nan]]),
    ]
    try:
        for L in (dl, torch):
            L.set_printoptions(**options)
        for v in values:
            assert repr(dl.tensor(v, dtype=dl.float32)) == repr(
                torch.tensor(v, dtype=torch.float32)
            ).replace("torch.", "darklib.")
        assert repr(dl.arange(2000)) == repr(torch.arange(2000))
    finally:
        for L in (dl, torch):
            L.set_printoptions(profile="default")
    assert repr(dl.tensor([1.123456])) == "tensor([1.1235])"


def test_printoptions_context_restores_and_bad_profile_is_refused():
    from darklib.tensor import printoptions

    with printoptions(precision=1):
        assert repr(dl.tensor([1.26])) == "tensor([1.3])"
    assert repr(dl.tensor([1.26])) == "tensor([1.2600])"
    with pytest.raises(ValueError, match="profile"):
        dl.set_printoptions(profile="long")
    for bad in ({"threshold": [0]}, {"precision": 2.5}, {"linewidth": -1}, {"sci_mode": 1}):
        with pytest.raises(ValueError, match="set_printoptions"):
            dl.set_printoptions(**bad)
    assert repr(dl.tensor([1.26])) == "tensor([1.2600])"  # (a refused call changed nothing)


def test_rng_state_round_trips_for_the_default_and_other_generators(tmp_path):
    dl.manual_seed(3)
    state = dl.get_rng_state()
    assert state.dtype == dl.uint8 and state.ndim == 1
    first = dl.randn(5)
    dl.set_rng_state(state)
    np.testing.assert_array_equal(dl.randn(5).numpy(), first.numpy())
    # it survives a save and load (a plain tensor)
    dl.save({"rng": state}, tmp_path / "s.safetensors")
    dl.set_rng_state(dl.load(tmp_path / "s.safetensors")["rng"])
    np.testing.assert_array_equal(dl.randn(5).numpy(), first.numpy())
    g = dl.Generator().manual_seed(9)
    st = g.get_state()
    a = dl.rand(4, generator=g)
    g.set_state(st)
    np.testing.assert_array_equal(dl.rand(4, generator=g).numpy(), a.numpy())


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (dl.ones(3), TypeError, "uint8"),
        (dl.zeros(7, dtype=dl.uint8), ValueError, "7 bytes is not a darklib generator state"),
        ({"seed": 1}, TypeError, "got dict"),
    ],
)
def test_set_rng_state_refuses_what_get_rng_state_did_not_make(bad, error, match):
    with pytest.raises(error, match=match):
        dl.set_rng_state(bad)


def test_queries_and_switches_as_torch():
    for L in (dl, torch):
        assert L.is_signed(L.ones(1)) and L.is_signed(L.ones(1, dtype=L.int8))
        assert not L.is_signed(L.ones(1, dtype=L.uint8)) and not L.is_signed(
            L.ones(1, dtype=L.bool)
        )
        assert not L.is_complex(L.ones(1))
    assert dl.typename(dl.ones(1)) == "darklib.FloatTensor"
    assert dl.typename(1) == torch.typename(1) == "int"
    assert dl.typename(dl.nn.Linear(1, 1)).endswith(".Linear")
    assert not dl.are_deterministic_algorithms_enabled()
    dl.use_deterministic_algorithms(True, warn_only=True)
    try:
        assert dl.are_deterministic_algorithms_enabled()
        assert dl.is_deterministic_algorithms_warn_only_enabled()
    finally:
        dl.use_deterministic_algorithms(False)
    assert dl.get_float32_matmul_precision() == torch.get_float32_matmul_precision() == "highest"
    dl.set_float32_matmul_precision("high")
    try:
        assert dl.get_float32_matmul_precision() == "high"
    finally:
        dl.set_float32_matmul_precision("highest")
    with pytest.raises(ValueError, match="'highest', 'high' or 'medium'"):
        dl.set_float32_matmul_precision("low")


@pytest.mark.parametrize("device", DEVICES)
def test_default_device_is_used_by_creation_but_not_by_tensors_and_arrays(device):
    cpu_tensor = dl.ones(2)
    try:
        dl.set_default_device(device)
        assert dl.get_default_device() == dl.device(device)
        made = [
            dl.zeros(2),
            dl.tensor([1.0, 2.0]),
            dl.arange(3),
            dl.randn(2),
            dl.full((2,), 3.0),
            dl.as_tensor(np.ones(2)),
            dl.nn.Linear(2, 3).weight,
        ]
        assert all(t.device.type == device for t in made)
        # a tensor's or array's own device wins, and *_like follows its input
        assert dl.tensor(cpu_tensor).device.type == "cpu"
        assert dl.from_numpy(np.ones(2)).device.type == "cpu"
        assert dl.zeros_like(cpu_tensor).device.type == "cpu"
    finally:
        dl.set_default_device(None)
    assert dl.zeros(1).device.type == "cpu"


def test_default_cuda_device_without_a_gpu_fails_at_creation_with_the_cuda_message():
    if dl.cuda.is_available():
        pytest.skip("a GPU is present")
    try:
        dl.set_default_device("cuda")
        with pytest.raises(RuntimeError, match="CUDA was asked for but is not available"):
            dl.zeros(2)
        with pytest.raises(RuntimeError, match="CUDA was asked for but is not available"):
            dl.tensor([1.0])
    finally:
        dl.set_default_device(None)


@pytest.mark.skipif(not dl.cuda.is_available(), reason="no GPU")
def test_set_rng_state_restores_the_cpu_stream_and_leaves_the_gpu_streams_going():
    """As torch's: the state is the CPU stream's; resuming does not replay GPU masks."""
    dl.manual_seed(0)
    state = dl.get_rng_state()
    first_gpu = dl.rand(64, device="cuda").cpu().numpy()
    first_cpu = dl.rand(4).numpy()
    dl.set_rng_state(state)
    assert not np.array_equal(dl.rand(64, device="cuda").cpu().numpy(), first_gpu)
    np.testing.assert_array_equal(dl.rand(4).numpy(), first_cpu)


def test_size_arithmetic_stays_a_size_as_torch():
    for L in (dl, torch):
        s = L.Size([2, 3])
        for out in (s + (4,), (4,) + s, s * 2, 2 * s, s + s, s[1:]):  # noqa: RUF005
            assert isinstance(out, L.Size), (L.__name__, out)
        with pytest.raises(TypeError):
            s + [1]  # noqa: RUF005
        with pytest.raises(TypeError):
            [1] + s  # noqa: RUF005


def test_angle_apply_map_and_the_real_only_queries_as_torch():
    res = {}
    for L in (dl, torch):
        x = L.tensor([-1.0, 0.0, 2.0, float("nan"), float("-inf")], requires_grad=True)
        a = x.angle()
        a.sum().backward()
        y = L.tensor([1.0, 2.0])
        y.apply_(lambda v: v * 10)
        z = L.tensor([1, 2])
        z.map_(L.tensor([3, 4]), lambda p, q: p * q + 0.7)
        res[L.__name__] = (
            a.tolist(),
            x.grad.tolist(),
            L.angle(L.tensor([1, -2])).tolist(),
            y.tolist(),
            z.tolist(),
            y.hardshrink(15.0).tolist(),
            y.prelu(L.tensor([0.5])).tolist(),
            y.isreal().tolist(),
            (y.is_meta, y.is_sparse, y.is_quantized, y.is_conj(), y.is_neg(), y.conj() is y),
        )
        with pytest.raises(RuntimeError, match="requires grad"):
            L.tensor([1.0], requires_grad=True).apply_(lambda v: v)
    np.testing.assert_equal(res["darklib"], res["torch"])


def test_summarising_print_options_and_fixed_size_rng_states():
    try:
        for L in (dl, torch):
            L.set_printoptions(threshold=0)
        for v in (3.5, 7, True):
            assert repr(dl.tensor(v)) == repr(torch.tensor(v))
        assert repr(dl.arange(10)) == repr(torch.arange(10))
    finally:
        for L in (dl, torch):
            L.set_printoptions(profile="default")
    before = dl.get_rng_state()
    dl.rand(100)
    after = dl.get_rng_state()
    assert before.shape == after.shape and bool((before != after).any())
    with dl.random.fork_rng():
        inside = dl.rand(3)
    np.testing.assert_array_equal(dl.rand(3).numpy(), inside.numpy())


def test_pin_memory_as_torch():
    x = dl.arange(6.0, requires_grad=True)
    assert not x.is_pinned()
    if not dl.cuda.is_available():
        for L in (dl, torch):
            with pytest.raises(RuntimeError, match="Cannot access accelerator device"):
                L.ones(3).pin_memory()
        return
    p = x.pin_memory()
    assert p.is_pinned() and not x.is_pinned()
    np.testing.assert_array_equal(p.detach().numpy(), x.detach().numpy())
    (p * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(6, 2.0))
    assert p.cuda().device.type == "cuda"
    with pytest.raises(RuntimeError, match="only dense CPU tensors"):
        dl.ones(2, device="cuda").pin_memory()
