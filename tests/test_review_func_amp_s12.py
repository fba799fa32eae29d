"""Review of dl.func and dl.amp against torch.func / torch.amp (session 12): cotangent and
tangent structure checks, integer outputs, has_aux and argnums rules, jacfwd's
randomness, chunk_size checks, vmap over an empty batch and vmap's error types,
stack_module_state's checks; autocast's dtype state, custom_fwd/custom_bwd, the legacy
names and the thread's autocast switches."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.func as tf

import darklib as dl
import darklib.func as df
from darklib.amp import autocast_mode as dl_amp_mode
from tests.oracle import rng


def _pair(*shape, seed=0):
    a = rng(seed).standard_normal(shape)
    return dl.tensor(a, dtype=dl.float32), torch.tensor(a, dtype=torch.float32)


def _np(x):
    return np.asarray(x.detach().float().numpy())


def _raises_both(call, exc=Exception):
    """``call(L, F)`` raises ``exc`` for darklib and torch alike; the messages."""
    messages = []
    for L, F in ((dl, df), (torch, tf)):
        with pytest.raises(exc) as info:
            call(L, F)
        messages.append(str(info.value))
    return messages


# ------------------------------------------------------------------ vjp / jvp structure


def test_vjp_fn_matches_cotangents_by_structure_not_by_position():
    xd, xt = _pair(3)
    # a dict in another key order was silently matched by position before
    msgs = _raises_both(
        lambda L, F: F.vjp(lambda x: {"a": x.sin(), "b": x.cos()}, xd if L is dl else xt)[1](
            {"b": L.ones(3), "a": L.zeros(3)}
        ),
        RuntimeError,
    )
    assert all("pytree structure of cotangents" in m for m in msgs)
    for bad in (lambda L: [L.ones(3), L.ones(2)], lambda L: (L.ones(3),)):
        _raises_both(
            lambda L, F, bad=bad: F.vjp(
                lambda x: (x.sin(), x[:2]) if bad(L).__class__ is list else x.sin(),
                xd if L is dl else xt,
            )[1](bad(L)),
            RuntimeError,
        )
    # torch's vjp_fn takes one cotangent structure and its keywords
    res = {}
    for L, F, x in ((dl, df, xd), (torch, tf, xt)):
        _, fn = F.vjp(lambda z: (z.sin(), z[:2] * 3), x)
        first = fn((L.ones(3), L.ones(2)), retain_graph=True)
        second = fn((2 * L.ones(3), L.zeros(2)), create_graph=False)
        res[L.__name__] = [_np(first[0]), _np(second[0])]
    for a, b in zip(res["darklib"], res["torch"]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_vjp_fn_shape_and_type_errors():
    xd, xt = _pair(3)
    msgs = _raises_both(
        lambda L, F: F.vjp(lambda z: z.sin(), xd if L is dl else xt)[1](L.ones(2)), RuntimeError
    )
    assert all("Mismatch in shape" in m for m in msgs)
    _raises_both(lambda L, F: F.vjp(lambda z: z.sum(), xd if L is dl else xt)[1](1.0), TypeError)


def test_reverse_mode_refuses_integer_outputs_forward_mode_gives_zeros():
    xd, xt = _pair(3)
    for name in ("vjp", "jacrev"):
        msgs = _raises_both(
            lambda L, F, name=name: (
                F.vjp(lambda x: (x > 0).long(), xd if L is dl else xt)
                if name == "vjp"
                else F.jacrev(lambda x: (x > 0).long())(xd if L is dl else xt)
            ),
            RuntimeError,
        )
        assert all("must be floating-point or complex" in m for m in msgs)
    jd = df.jacfwd(lambda x: (x > 0).long())(xd)
    jt = tf.jacfwd(lambda x: (x > 0).long())(xt)
    assert tuple(jd.shape) == tuple(jt.shape) and str(jd.dtype) == "darklib.int64"
    assert not jd.numpy().any()


def test_jvp_checks_primals_and_tangents_as_torch():
    xd, xt = _pair(3)
    msgs = _raises_both(lambda L, F: F.jvp(lambda x: x.sin(), [L.ones(3)], [L.ones(3)]))
    assert all("Expected primals to be a tuple" in m for m in msgs)
    msgs = _raises_both(
        lambda L, F: F.jvp(lambda x, y: x, (L.ones(3), L.ones(3)), (L.ones(3),)), RuntimeError
    )
    assert all("same python structure" in m for m in msgs)
    # dict primals: tangents matched by key order, values as torch
    pd = ({"a": xd, "b": xd * 2},)
    pt = ({"a": xt, "b": xt * 2},)
    od, jd = df.jvp(lambda d: d["a"].sin() * d["b"], pd, ({"a": dl.ones(3), "b": xd},))
    ot, jt = tf.jvp(lambda d: d["a"].sin() * d["b"], pt, ({"a": torch.ones(3), "b": xt},))
    np.testing.assert_allclose(_np(jd), _np(jt), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(od), _np(ot), rtol=1e-6)


# ------------------------------------------------------------------ grad's rules


def test_has_aux_wants_an_output_aux_pair_of_tensors():
    xd, xt = _pair(3)
    for f in (
        lambda x: (x**2).sum(),
        lambda x: ((x**2).sum(), x, x),
    ):
        msgs = _raises_both(lambda L, F, f=f: F.grad(f, has_aux=True)(xd if L is dl else xt))
        assert all("should be a tuple: (output, aux)" in m for m in msgs)
    for F, x in ((df, xd), (tf, xt)):
        with pytest.raises(RuntimeError, match="Expected tensors, got unsupported type"):
            F.grad(lambda z: ((z**2).sum(), 3), has_aux=True)(x)
        with pytest.raises(RuntimeError, match="Expected tensors, got unsupported type"):
            F.jacrev(lambda z: (z.sin(), {"k": None}), has_aux=True)(x)


def test_grad_output_and_argnums_errors_as_torch():
    xd, xt = _pair(3)
    msgs = _raises_both(
        lambda L, F: F.grad(lambda x: (x.sum(), x.sum()))(xd if L is dl else xt), RuntimeError
    )
    assert all("Expected f(*args) to return a Tensor, got <class 'tuple'>" in m for m in msgs)
    for argnums in ([0], 0.0):
        msgs = _raises_both(
            lambda L, F, a=argnums: F.grad(lambda x, y: (x * y).sum(), argnums=a)(
                *((xd, xd) if L is dl else (xt, xt))
            ),
            RuntimeError,
        )
        assert all("argnums must be int or Tuple[int, ...]" in m for m in msgs)
    msgs = _raises_both(
        lambda L, F: F.grad(lambda x, y: x.sum(), argnums=(0, 0))(
            *((xd, xd) if L is dl else (xt, xt))
        ),
        RuntimeError,
    )
    assert all("argnums elements must be unique" in m for m in msgs)
    _raises_both(lambda L, F: F.grad(lambda x: x * 2)(3.0), ValueError)


# ------------------------------------------------------------------ jacobians


def test_jacfwd_refuses_random_ops_by_default_and_checks_randomness():
    xd, xt = _pair(3)
    msgs = _raises_both(
        lambda L, F: F.jacfwd(lambda x: x * L.rand(3))(xd if L is dl else xt), RuntimeError
    )
    assert all("randomness error mode" in m for m in msgs)
    _raises_both(
        lambda L, F: F.jacfwd(lambda x: x, randomness="foo")(xd if L is dl else xt), RuntimeError
    )
    jd = df.jacfwd(lambda x: x * 2 + 0 * dl.rand(3), randomness="same")(xd)
    jt = tf.jacfwd(lambda x: x * 2 + 0 * torch.rand(3), randomness="same")(xt)
    np.testing.assert_allclose(_np(jd), _np(jt))


def test_chunk_size_is_checked_as_torch_and_changes_no_value():
    xd, xt = _pair(5, 3)
    for bad in (0, -1):
        _raises_both(
            lambda L, F, b=bad: F.jacrev(lambda x: x.sin(), chunk_size=b)(xd if L is dl else xt),
            ValueError,
        )
        _raises_both(
            lambda L, F, b=bad: F.vmap(lambda x: x.sum(), chunk_size=b)(xd if L is dl else xt),
            ValueError,
        )
    jd = df.jacrev(lambda x: x.sin() * x.sum(), chunk_size=4)(xd)
    jt = tf.jacrev(lambda x: x.sin() * x.sum(), chunk_size=4)(xt)
    np.testing.assert_allclose(_np(jd), _np(jt), rtol=1e-5, atol=1e-6)
    vd = df.vmap(lambda x: x.cumsum(0), chunk_size=2)(xd)
    vt = tf.vmap(lambda x: x.cumsum(0), chunk_size=2)(xt)
    np.testing.assert_allclose(_np(vd), _np(vt), rtol=1e-6)


# ------------------------------------------------------------------ vmap


def test_vmap_over_an_empty_batch_gives_torchs_shapes():
    xd, xt = _pair(0, 3)
    cases = [
        lambda L, F: F.vmap(lambda x: x * 2)(xd if L is dl else xt),
        lambda L, F: F.vmap(F.grad(lambda x: (x**2).sum()))(xd if L is dl else xt),
        lambda L, F: F.vmap(lambda x: (x.sum(), x.outer(x)), out_dims=(0, 2))(
            xd if L is dl else xt
        ),
    ]
    for case in cases:
        got = case(dl, df)
        want = case(torch, tf)
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        assert [tuple(g.shape) for g in got] == [tuple(w.shape) for w in want]


def test_vmap_errors_are_torchs_exception_types():
    xd, xt = _pair(4, 3)
    cases = [
        (lambda L, F: F.vmap(lambda x: 1.0)(xd if L is dl else xt), ValueError),
        (lambda L, F: F.vmap(lambda x: x * 2, out_dims=None)(xd if L is dl else xt), ValueError),
        (lambda L, F: F.vmap(lambda x: x, out_dims=3)(xd if L is dl else xt), IndexError),
        (lambda L, F: F.vmap(lambda: L.ones(2))(), ValueError),
        (
            lambda L, F: F.vmap(lambda x, y: x, in_dims=(0,))(*((xd, xd) if L is dl else (xt, xt))),
            ValueError,
        ),
        (
            lambda L, F: F.vmap(lambda d: d["a"], in_dims=({"a": 0},))(
                {"a": xd, "b": xd} if L is dl else {"a": xt, "b": xt}
            ),
            ValueError,
        ),
        (lambda L, F: F.vmap(lambda x: x, in_dims={"a": 0})(xd if L is dl else xt), ValueError),
    ]
    for call, exc in cases:
        _raises_both(call, exc)


def test_vmap_nested_dict_in_dims_match_torch():
    a = rng(3).standard_normal((4, 3))
    b = rng(4).standard_normal(5)
    got = df.vmap(lambda d: d["a"].sum() + d["b"].sum(), in_dims=({"b": None, "a": 0},))(
        {"a": dl.tensor(a), "b": dl.tensor(b)}
    )
    want = tf.vmap(lambda d: d["a"].sum() + d["b"].sum(), in_dims=({"b": None, "a": 0},))(
        {"a": torch.tensor(a), "b": torch.tensor(b)}
    )
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


# ------------------------------------------------------------------ modules


def test_stack_module_state_checks_as_torch():
    def models(L, same_class=True, frozen=False):
        L.manual_seed(0)
        first = L.nn.Linear(2, 2)
        second = L.nn.Linear(2, 2) if same_class else L.nn.Sequential(L.nn.Linear(2, 2))
        if frozen:
            first.weight.requires_grad_(False)
        return [first, second]

    msgs = _raises_both(lambda L, F: F.stack_module_state(models(L, frozen=True)), RuntimeError)
    assert all("to have the same .requires_grad" in m for m in msgs)
    msgs = _raises_both(
        lambda L, F: F.stack_module_state(models(L, same_class=False)), RuntimeError
    )
    assert all("same class" in m for m in msgs)
    msgs = _raises_both(
        lambda L, F: F.stack_module_state([L.nn.Linear(2, 2), L.nn.Linear(2, 2).eval()]),
        RuntimeError,
    )
    assert all("training/eval mode" in m for m in msgs)


def test_functional_call_refuses_what_is_not_a_dict():
    msgs = _raises_both(
        lambda L, F: F.functional_call(L.nn.Linear(2, 2), 3, (L.ones(1, 2),)), ValueError
    )
    assert all("Expected parameter_and_buffer_dicts to be a dict" in m for m in msgs)
    msgs = _raises_both(
        lambda L, F: F.functional_call(
            L.nn.Linear(2, 2),
            (
                {"weight": L.ones(2, 2), "bias": L.ones(2)},
                {"bias": L.ones(2), "weight": L.ones(2, 2)},
            ),
            (L.ones(1, 2),),
        ),
        ValueError,
    )
    assert msgs[0] == msgs[1]  # (the clashing names in the same order)


# ------------------------------------------------------------------ amp


def test_get_autocast_dtype_follows_the_innermost_block():
    res = {}
    for L in (dl, torch):
        seen = []
        with L.autocast("cpu", dtype=L.float16, enabled=False):
            seen.append(L.get_autocast_dtype("cpu"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with L.autocast("cpu", dtype=L.float32):  # (unsupported: warns, disabled)
                    seen.append(L.get_autocast_dtype("cpu"))
                    seen.append(L.is_autocast_enabled("cpu"))
            seen.append(L.get_autocast_dtype("cpu"))
        with L.autocast("cpu", dtype=L.float16):
            seen.append(L.get_autocast_dtype("cpu"))
        res[L.__name__] = [str(s).split(".")[-1] for s in seen]
    assert res["darklib"] == res["torch"] == ["float16", "float32", "False", "float16", "float16"]
    assert dl.amp.is_autocast_available("cpu") and torch.amp.is_autocast_available("cpu")


def test_cache_switch_and_manual_enable_as_torch():
    x, w = _pair(4, 3), _pair(2, 3, seed=1)
    for L, ns in ((dl, dl_amp_mode), (torch, torch)):
        assert ns.is_autocast_cache_enabled()
        with L.autocast("cpu", dtype=L.float16, cache_enabled=False):
            assert not ns.is_autocast_cache_enabled()
        assert ns.is_autocast_cache_enabled()
        xi, wi = (x[0], w[0]) if L is dl else (x[1], w[1])
        before = L.get_autocast_dtype("cpu")
        ns.set_autocast_dtype("cpu", L.float16)
        ns.set_autocast_enabled("cpu", True)
        try:
            assert L.nn.functional.linear(xi, wi).dtype == L.float16
            assert L.get_autocast_dtype("cpu") == L.float16
        finally:
            ns.set_autocast_enabled("cpu", False)
            ns.set_autocast_dtype("cpu", before)
        assert L.nn.functional.linear(xi, wi).dtype == L.float32
    dl_amp_mode.clear_autocast_cache()


def _custom_trace(L, cast):
    seen = []

    class MyMM(L.autograd.Function):
        @staticmethod
        @L.amp.custom_fwd(device_type="cpu", cast_inputs=cast)
        def forward(ctx, a, b):
            seen.append(("fwd", a.dtype, L.is_autocast_enabled("cpu"), a.mm(b).dtype))
            ctx.save_for_backward(a, b)
            return a.mm(b)

        @staticmethod
        @L.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            seen.append(("bwd", g.dtype, L.is_autocast_enabled("cpu"), g.mm(b.t()).dtype))
            return g.mm(b.t()), a.t().mm(g)

    a = L.tensor(rng(0).standard_normal((3, 4)), dtype=L.float32, requires_grad=True)
    b = L.tensor(rng(1).standard_normal((4, 2)), dtype=L.float32, requires_grad=True)
    with L.autocast("cpu", dtype=L.float16):
        y = MyMM.apply(a, b)
    y.float().sum().backward()
    seen.append(("out", y.dtype, a.grad.dtype, b.grad.dtype))
    return [tuple(str(v).split(".")[-1] for v in step) for step in seen], _np(a.grad)


@pytest.mark.parametrize("cast", [None, "float32", "float16"])
def test_custom_fwd_and_custom_bwd_match_torch(cast):
    got, gd = _custom_trace(dl, None if cast is None else getattr(dl, cast))
    want, gt = _custom_trace(torch, None if cast is None else getattr(torch, cast))
    assert got == want
    np.testing.assert_allclose(gd, gt, rtol=1e-2, atol=1e-2)
    with pytest.raises(TypeError):
        dl.amp.custom_fwd(lambda ctx: 0)  # (device_type is required, as torch)
    with pytest.raises(ValueError, match="device_type"):
        dl.amp.custom_bwd(device_type=1)


def test_legacy_names_warn_as_torch_and_work():
    from darklib.cpu.amp import GradScaler as CpuScaler
    from darklib.cuda.amp import custom_bwd, custom_fwd

    with pytest.warns(FutureWarning, match=r"darklib.amp.GradScaler\('cpu', args...\)"):
        scaler = CpuScaler(init_scale=4.0)
    assert scaler.is_enabled() and scaler.get_scale() == 4.0
    with pytest.warns(FutureWarning, match="device_type='cuda'"):
        fwd = custom_fwd(lambda ctx, x: x * 2)
    with pytest.warns(FutureWarning, match="device_type='cuda'"):
        bwd = custom_bwd(lambda ctx, g: g * 2)

    class Twice(dl.autograd.Function):
        forward = staticmethod(fwd)
        backward = staticmethod(bwd)

    x = dl.ones(3, requires_grad=True)
    Twice.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]
