"""Higher-order gradients (``create_graph=True``): the gradient of a gradient against torch
and against central differences, for every op with a ``backward_graph``, and the engine's
behaviour around it (``.grad`` with a graph, retain_graph's default, hooks, custom
Functions, once_differentiable, a clear error for ops not covered)."""

import numpy as np
import pytest
import torch

import darklib as dl
from tests.oracle import DEVICES, assert_close, gradcheck, rng

F = {"torch": torch.nn.functional, "darklib": dl.nn.functional}


def _grads(m, fn, arrays, v_seed=5, device="cpu"):
    """(inputs, first gradients with a graph) of ``fn`` projected on a random direction."""
    kw = {"device": device} if m is dl else {}
    xs = [m.tensor(a, requires_grad=True, **kw) for a in arrays]
    y = fn(m, *xs)
    v = m.tensor(rng(v_seed).standard_normal(tuple(y.shape)), dtype=y.dtype, **kw)
    gs = m.autograd.grad(y, xs, v, create_graph=True)
    return xs, gs


def check_gradgrad(fn, *arrays, device="cpu", atol=1e-9, rtol=1e-7, fd=True, with_torch=True):
    """First and second gradients of ``fn`` (float64) equal torch's; the second ones also
    equal central differences of the first."""
    res = {}
    for m in (torch, dl) if with_torch else (dl,):
        xs, gs = _grads(m, fn, arrays, device=device if m is dl else "cpu")
        u = [rng(7 + i).standard_normal(tuple(g.shape)) for i, g in enumerate(gs)]
        kw = {"device": device} if m is dl else {}
        s = sum((g * m.tensor(ui, dtype=g.dtype, **kw)).sum() for g, ui in zip(gs, u))
        ggs = m.autograd.grad(s, xs, allow_unused=True, materialize_grads=True)
        res[m.__name__] = (gs, ggs)
    for i, d in enumerate(res["darklib"][0]):  # a graph wherever torch's gradient has one
        if not with_torch or res["torch"][0][i].requires_grad:
            assert d.requires_grad, f"first gradient {i} has no graph"
    if with_torch:
        for i, (d, t) in enumerate(zip(res["darklib"][0], res["torch"][0])):
            assert_close(d, t, atol, rtol, f"first gradient {i}")
        for i, (d, t) in enumerate(zip(res["darklib"][1], res["torch"][1])):
            assert_close(d, t, atol, rtol, f"second gradient {i}")
    if fd and device == "cpu":

        def first(*xs):  # the first gradients as a function of the inputs
            constant = not any(x.requires_grad for x in xs)  # (central differences)
            xs = [x if x.requires_grad else x.requires_grad_() for x in xs]
            y = fn(dl, *xs)
            v = dl.tensor(rng(5).standard_normal(tuple(y.shape)), dtype=y.dtype)
            gs = dl.autograd.grad(y, xs, v, create_graph=True)
            return tuple(g.detach() for g in gs) if constant else gs

        gradcheck(first, *arrays, atol=1e-5, rtol=1e-4)


def _on(m, like, data):
    """``m.tensor(data)`` on ``like``'s device (index and constant tensors of a case)."""
    return m.tensor(data, device=like.device)


r = rng(0)
A34, B34, B4, P34 = (
    r.standard_normal((3, 4)),
    r.standard_normal((3, 4)),
    r.standard_normal(4),
    r.uniform(0.5, 2.0, (3, 4)),
)
# away from the kinks of abs, relu and leaky_relu (central differences straddle them)
K34 = np.where(np.abs(A34) < 0.2, 0.5, A34)

CASES = {
    "add_broadcast": (lambda m, a, b: (a + b) * (a - b), A34, B4),
    "mul_div": (lambda m, a, b: a * b / (b * b + 1) - 2.5 * a + 1 / (1 + a * a), A34, B34),
    "scalar_div_sub": (lambda m, a: 3.0 / (a * a + 1) - (2 - a) * a, A34),
    "pow_scalar": (lambda m, a: a**3 + (a * a + 1) ** -0.5 + (a * a) ** 1.25, A34),
    "pow_tensor": (lambda m, a, b: a**b + 2.0**b, P34, B34),
    "exp_log_sqrt": (lambda m, a: m.exp(a) * m.log(a) + m.sqrt(a) * a, P34),
    "sin_cos": (lambda m, a: m.sin(a) * m.cos(2 * a), A34),
    "tanh_sigmoid": (lambda m, a, b: m.tanh(a * b) + m.sigmoid(a) * b, A34, B34),
    "abs_relu_leaky": (
        lambda m, a: (
            m.abs(a) * a + F[m.__name__].relu(a) ** 2 + F[m.__name__].leaky_relu(a, 0.2) ** 3
        ),
        K34,
    ),
    "unary_family": (
        lambda m, a: m.log1p(a * a) + m.sinh(a) * m.atan(a) + m.erf(a) * m.expm1(a) + m.tan(a),
        A34 * 0.5,
    ),
    "elu_gelu_silu_softplus": (
        lambda m, a: (
            F[m.__name__].elu(a, 0.7) ** 2
            + F[m.__name__].gelu(a) * a
            + F[m.__name__].gelu(a, approximate="tanh") ** 2
            + F[m.__name__].silu(a) * a
            + F[m.__name__].softplus(a, beta=2.0, threshold=1.5) ** 2
        ),
        K34,
    ),
    "mish_hardswish": (
        lambda m, a: F[m.__name__].mish(a) ** 2 + F[m.__name__].hardswish(a * 3) * a,
        K34,
    ),
    "attention_lp_pool_lrn": (
        lambda m, a: (
            (F[m.__name__].scaled_dot_product_attention(a[None], a[None] * 0.5, a[None]) ** 2).sum()
            + F[m.__name__].lp_pool1d(a[None] * a[None] + 1, 2.0, 2).sum()
            + (F[m.__name__].local_response_norm(a[None, :, :, None], 2) ** 2).sum()
        ),
        A34,
    ),
    "grid_sample_unfold": (
        lambda m, a, b: (
            (
                F[m.__name__].grid_sample(
                    a.reshape(1, 1, 3, 4),
                    (b.reshape(1, 2, 2, 3)[..., :2] * 0.4),
                    align_corners=True,
                )
                ** 2
            ).sum()
            + (F[m.__name__].unfold(a.reshape(1, 1, 3, 4), 2) ** 3).sum()
        ),
        A34,
        B34,
    ),
    "sum_mean_dims": (
        lambda m, a: (a * a).sum(1, keepdim=True) * a.mean(0) + (a**3).sum() + a.mean(),
        A34,
    ),
    "reshape_permute_expand": (
        lambda m, a: (
            (a.reshape(2, 6).t() ** 2).permute(1, 0).reshape(3, 4)
            * a.unsqueeze(0).expand(2, 3, 4).sum(0)
            + a.flatten().view(4, 3).transpose(0, 1).reshape(3, 4) ** 2
        ),
        A34,
    ),
    "softmax_log_softmax": (
        lambda m, a, b: (m.softmax(a * b, 1) * b).sum(0) + (m.log_softmax(a, 0) * b).sum(1)[0],
        A34,
        B34,
    ),
    "where_cat": (
        lambda m, a, b: m.cat([m.where(a > 0, a * b, b * b), a**2, b.unsqueeze(0) ** 3], 0),
        A34,
        B4,
    ),
    "clamp_max_min": (
        lambda m, a, b: (
            m.clamp(a * b, -0.5, 0.7) ** 2
            + m.maximum(a, b[0]) ** 3
            + m.minimum(a * a, b) * a
            + m.clamp(a, min=b[1] - 0.3, max=b[1] + 0.4) ** 2
            + m.fmax(a, b) ** 2
        ),
        A34,
        B34,
    ),
    "stack_flip_roll": (
        lambda m, a, b: (
            m.stack([a * b, a**2, b**3], 1).flip(0, 2) * m.roll(a, (1, -2), (0, 1)).unsqueeze(1)
        ),
        A34,
        B34,
    ),
    "pad_modes": (
        lambda m, a: (
            F[m.__name__].pad(a.reshape(1, 1, 3, 4) ** 2, (1, 2, 0, 1), value=0.5).sum()
            + (F[m.__name__].pad(a.reshape(1, 3, 4) ** 3, (2, 1), mode="reflect") ** 2).sum()
            + (F[m.__name__].pad(a.reshape(1, 3, 4), (1, 1, 1, 1), mode="replicate") ** 3).sum()
            + (F[m.__name__].pad(a.reshape(1, 3, 4), (1, 2), mode="circular") ** 3).sum()
            + (F[m.__name__].pad(a**2, (-1, 1)) * 2).sum()
        ),
        A34,
    ),
    "cast_clone_setitem": (
        lambda m, a, b: _setitem(m, a.clone() * b, b[0] ** 2) ** 2,
        A34,
        B34,
    ),
    "advanced_indexing": (
        lambda m, a, b: (
            a[_on(m, a, [2, 0, 2]), 1:] ** 2 * b[_on(m, a, [0, 1, 1])][:, :3]
            + (a[a > 0.3] ** 3).sum()
            + a.index_select(1, _on(m, a, [3, 3, 0])).sum(1, keepdim=True) * b[:, :3]
        ),
        A34,
        B34,
    ),
    "gather_scatter": (
        lambda m, a, b: (
            a.gather(1, _on(m, a, [[0, 2], [1, 1], [3, 0]])) ** 2
            * b.scatter_add(1, _on(m, a, [[0, 2], [1, 1], [3, 0]]), a[:, :2] ** 2)[:, :2]
            + b.scatter(0, _on(m, a, [[2, 0, 1, 0]]), a[:1] ** 3)[:, 1:3]
            + a.index_add(0, _on(m, a, [2, 2]), b[:2] ** 2)[:, :2]
        ),
        A34,
        B34,
    ),
    "index_put": (
        lambda m, a, b: (
            a.index_put((_on(m, a, [0, 2, 0]),), b[1] ** 2, accumulate=True) ** 2
            + a.index_put((_on(m, a, [1]), _on(m, a, [2])), b[0, 0] ** 3)
        ),
        A34,
        B34,
    ),
    "var_std_norms": (
        lambda m, a, b: (
            a.var(1, keepdim=True) * b
            + a.std() * a
            + a.var(0, correction=0) * b[0]
            + a.norm(dim=1, keepdim=True) ** 3 * b
            + a.norm(p=3, dim=0) * b[1]
            + a.norm(p=0.5) * a
        ),
        A34,
        B34,
    ),
    "logsumexp_max_min": (
        lambda m, a, b: (
            m.logsumexp(a * b, 1, keepdim=True) ** 2 * b
            + a.amax(0) ** 3 * b[0]
            + a.max() * a
            + a.min(1).values.unsqueeze(1) ** 2 * b
            + a.max(0, keepdim=True)[0] * b
            + a.median() * a
        ),
        A34,
        B34,
    ),
    "cumsum_sort_topk": (
        lambda m, a, b: (
            a.cumsum(1) ** 2 * b
            + (a * b).cumprod(0) ** 2
            + m.logcumsumexp(a * b, 1) * a
            + a.sort(1).values ** 3 * b
            + (a.topk(2, 0).values ** 2).sum(0) * b[0, :4]
        ),
        A34,
        B34,
    ),
    "repeat_tri_diag": (
        lambda m, a, b: (
            (a.repeat(2, 1) ** 2).reshape(2, 3, 4).sum(0) * b
            + m.triu(a * b, 1) ** 2
            + m.tril(a**3, -1)
            + m.diagonal(a.reshape(3, 4) ** 2, 1).sum() * b
        ),
        A34,
        B34,
    ),
    "binary_specials": (
        lambda m, a, b: (
            m.atan2(a, b) ** 2
            + m.hypot(a, b) * a
            + m.logaddexp(a, b) ** 2
            + m.logaddexp2(a * b, b) * a
            + m.logit(m.sigmoid(a * b)) ** 3
            + m.xlogy(a, b * b + 0.5) * b
            + m.remainder(a * 3, b + 3) ** 2
            + m.fmod(a * 3, b + 3) * a
            + m.copysign(a * a, b) * b
            + m.floor(a * 3) * b
            + (a * b).prod(1, keepdim=True) ** 2
        ),
        A34,
        B34,
    ),
    "einsum": (
        lambda m, a, b: (
            m.einsum("ij,kj->ik", a, b) ** 2
            + m.einsum("ij,ij->i", a * a, b).unsqueeze(1) * a[:, :3]
            + m.einsum("ij->", a**3) * b[:, :3]
            + m.einsum("ij,j->i", a, b[0]).unsqueeze(1) ** 2
        ),
        A34,
        B34,
    ),
    "matmul_2d": (lambda m, a, b: m.tanh(a @ b.t()), A34, B34),
    "matmul_vectors": (
        lambda m, a, b: (b @ a.t()) * (a @ b).sum() + (b @ b) * (a[0] @ a.t()),
        A34,
        B4,
    ),
    "matmul_batched": (
        lambda m, a, b: m.sigmoid(a.reshape(3, 2, 2) @ b.reshape(2, 6)),
        A34,
        B34,
    ),
    "linear_3d": (
        lambda m, x, w, b: m.tanh(F[m.__name__].linear(x.reshape(2, 3, 2), w.reshape(6, 2), b[0])),
        A34,
        B34,
        r.standard_normal((6, 6)),
    ),
}


def _setitem(m, x, row):
    x = x * 1
    x[1, 1:3] = row[:2]  # an in-place write into a view of a non-leaf
    x[0].mul_(row[3])
    return x


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(CASES))
def test_gradient_of_gradient_follows_torch_and_central_differences(case, device):
    fn, *arrays = CASES[case]
    check_gradgrad(fn, *arrays, device=device)  # (central differences on the CPU only)


CONV_CASES = {
    "stride2_pad1": dict(stride=2, padding=1),
    "dilation2": dict(dilation=2, padding=2),
    "groups2_bias": dict(groups=2, padding=1, bias=True),
    "rect_stride": dict(stride=(2, 1), padding=(0, 1)),
}


INTERP_CASES = {
    "nearest": dict(scale_factor=2),
    "nearest_size": dict(size=(5, 7)),
    "bilinear": dict(scale_factor=2, mode="bilinear", align_corners=False),
    "bilinear_corners": dict(size=(5, 3), mode="bilinear", align_corners=True),
    "bicubic": dict(size=(6, 5), mode="bicubic", align_corners=False),
    "area": dict(size=(2, 3), mode="area"),
    "linear_1d": dict(scale_factor=1.5, mode="linear", one_d=True),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(INTERP_CASES))
def test_interpolate_gradient_of_gradient(case, device):
    kw = dict(INTERP_CASES[case])
    one_d = kw.pop("one_d", False)
    x = rng(1).standard_normal((2, 2, 4) if one_d else (2, 2, 3, 4))

    def fn(m, x):
        return F[m.__name__].interpolate(x * x, **kw) ** 2

    check_gradgrad(fn, x, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_embedding_gradient_of_gradient(device):
    idx = np.array([[0, 3, 3], [1, 0, 2]])
    for kw in ({}, dict(padding_idx=3), dict(padding_idx=1, scale_grad_by_freq=True)):

        def fn(m, w, kw=kw):
            return F[m.__name__].embedding(_on(m, w, idx), w * w, **kw) ** 2

        check_gradgrad(fn, rng(1).standard_normal((4, 3)), device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_third_order_through_conv_cross_entropy_and_pooling(device):
    x = rng(1).standard_normal((2, 2, 5, 5))
    w = rng(2).standard_normal((3, 2, 3, 3)) * 0.5
    t = np.array([1, 0])
    res = {}
    for m in (torch, dl):
        kw = {"device": device} if m is dl else {}
        xt, wt = m.tensor(x, requires_grad=True, **kw), m.tensor(w, requires_grad=True, **kw)
        y = F[m.__name__].conv2d(xt, wt, padding=1)
        logits = F[m.__name__].avg_pool2d(y, 5).flatten(1) ** 2
        loss = F[m.__name__].cross_entropy(logits, m.tensor(t, **kw))
        (g1,) = m.autograd.grad(loss, wt, create_graph=True)
        (g2,) = m.autograd.grad((g1 * g1).sum(), wt, create_graph=True)
        res[m.__name__] = m.autograd.grad((g2 * g2).sum(), [xt, wt])
    for d, t_ in zip(res["darklib"], res["torch"]):
        assert_close(d, t_, 1e-8, 1e-6, "third-order gradient")


@pytest.mark.parametrize("device", DEVICES)
def test_casts_gradient_of_gradient(device):
    # (float32 rounding inside: against torch only, at float32's tolerance)
    check_gradgrad(
        lambda m, a: m.tanh(a.float() * 2).double() * a.to(m.float32).double(),
        A34,
        device=device,
        atol=1e-6,
        rtol=1e-5,
        fd=False,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_gradient_of_gradient(case, device):
    kw = dict(CONV_CASES[case])
    bias = kw.pop("bias", False)
    g = kw.get("groups", 1)
    x = rng(1).standard_normal((2, 4, 7, 6))
    w = rng(2).standard_normal((6, 4 // g, 3, 3)) * 0.3
    b = rng(3).standard_normal(6)

    def fn(m, x, w, *b):
        y = F[m.__name__].conv2d(x, w, *b, **kw)
        return F[m.__name__].leaky_relu(y, 0.2) ** 2

    check_gradgrad(fn, x, w, *([b] if bias else []), device=device, fd=case == "stride2_pad1")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "kw", [dict(stride=2, padding=1, output_padding=1), dict(groups=2, dilation=2)]
)
def test_conv_transpose2d_gradient_of_gradient(kw, device):
    g = kw.get("groups", 1)
    x = rng(1).standard_normal((2, 4, 4, 5))
    w = rng(2).standard_normal((4, 6 // g, 3, 3)) * 0.3
    b = rng(3).standard_normal(6)

    def fn(m, x, w, b):
        return m.tanh(F[m.__name__].conv_transpose2d(x, w, b, **kw))

    check_gradgrad(fn, x, w, b, device=device, fd=g == 1)


def test_third_derivative_and_backward_create_graph_leave_a_graph_on_grad():
    x = dl.tensor([0.3, -1.2, 2.0], dtype=dl.float64, requires_grad=True)
    (g1,) = dl.autograd.grad((x**4).sum(), x, create_graph=True)
    (g2,) = dl.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = dl.autograd.grad(g2.sum(), x)
    xs = x.detach().numpy()
    np.testing.assert_allclose(g1.detach().numpy(), 4 * xs**3)
    np.testing.assert_allclose(g2.detach().numpy(), 12 * xs**2)
    np.testing.assert_allclose(g3.numpy(), 24 * xs)
    # backward(create_graph=True): .grad carries a graph, accumulates out of place
    y = (x**3).sum()
    y.backward(create_graph=True)
    assert x.grad.requires_grad and x.grad.grad_fn is not None
    first = x.grad
    y.backward(create_graph=True)  # retain_graph defaults to create_graph, as in torch
    assert x.grad is not first
    np.testing.assert_allclose(x.grad.detach().numpy(), 6 * xs**2)
    x.grad.sum().backward(inputs=[x])  # d/dx sum(6x^2) = 12x, added out of place
    np.testing.assert_allclose(x.grad.detach().numpy(), 6 * xs**2 + 12 * xs)


def test_hessian_vector_product_of_an_mlp_follows_torch():
    r = rng(4)
    x = r.standard_normal((5, 3))
    t = r.standard_normal((5, 2))
    w1, b1, w2 = r.standard_normal((8, 3)), r.standard_normal(8), r.standard_normal((2, 8))
    vs = [r.standard_normal(a.shape) for a in (w1, b1, w2)]
    out = {}
    for m in (torch, dl):
        ps = [m.tensor(a, requires_grad=True) for a in (w1, b1, w2)]
        h = m.tanh(F[m.__name__].linear(m.tensor(x), ps[0], ps[1]))
        loss = F[m.__name__].mse_loss(F[m.__name__].linear(h, ps[2]), m.tensor(t))
        gs = m.autograd.grad(loss, ps, create_graph=True)
        dot = sum((g * m.tensor(v)).sum() for g, v in zip(gs, vs))
        out[m.__name__] = m.autograd.grad(dot, ps)
    for d, t_ in zip(out["darklib"], out["torch"]):
        assert_close(d, t_, 1e-9, 1e-7, "Hessian-vector product")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "kw",
    [
        {},
        dict(reduction="sum", ignore_index=1),
        dict(weight=True, label_smoothing=0.2),
        dict(reduction="none", spatial=True),
    ],
)
def test_cross_entropy_gradient_of_gradient(kw, device):
    kw = dict(kw)
    spatial = kw.pop("spatial", False)
    shape = (4, 3, 2, 2) if spatial else (5, 3)
    x = rng(1).standard_normal(shape)
    t = rng(2).integers(0, 3, (shape[0], *shape[2:]))
    w = rng(3).uniform(0.5, 2.0, 3)

    def fn(m, x):
        extra = dict(kw)
        if extra.pop("weight", False):
            extra["weight"] = _on(m, x, w)
        return F[m.__name__].cross_entropy(x * x, _on(m, x, t), **extra)

    check_gradgrad(fn, x, device=device)


NORM_CASES = {
    "batch_norm_train": lambda m, x, w, b: F[m.__name__].batch_norm(
        x, None, None, w, b, training=True
    ),
    "batch_norm_eval": lambda m, x, w, b: F[m.__name__].batch_norm(
        x, m.tensor(RM, device=x.device), m.tensor(RV, device=x.device), w, b, training=False
    ),
    "layer_norm": lambda m, x, w, b: F[m.__name__].layer_norm(
        x, (3, 4), w.reshape(3, 1).expand(3, 4), b.reshape(3, 1).expand(3, 4)
    ),
    "layer_norm_no_affine": lambda m, x, w, b: F[m.__name__].layer_norm(x * w.sum(), (4,)),
    "group_norm": lambda m, x, w, b: F[m.__name__].group_norm(x, 3, w, b),
    "instance_norm": lambda m, x, w, b: F[m.__name__].instance_norm(x, weight=w, bias=b),
    "batch_norm_no_weight": lambda m, x, w, b: F[m.__name__].batch_norm(
        x * w.reshape(1, 3, 1, 1), None, None, None, b, training=True
    ),
}
RM, RV = rng(8).standard_normal(3), rng(9).uniform(0.5, 2.0, 3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(NORM_CASES))
def test_normalisation_gradient_of_gradient(case, device):
    x = rng(1).standard_normal((4, 3, 3, 4)) * 2 + 1
    w = rng(2).uniform(0.5, 1.5, 3)
    b = rng(3).standard_normal(3)

    def fn(m, x, w, b):  # a nonlinear head: second derivatives through every input
        return m.tanh(NORM_CASES[case](m, x, w, b)) * (b.sum() + 2)

    # torch 2.13 cannot differentiate batch_norm's backward without a weight twice
    # ("Expected a proper Tensor but got None"): central differences alone there
    check_gradgrad(
        fn, x, w, b, device=device, fd=device == "cpu", with_torch=case != "batch_norm_no_weight"
    )


POOL_CASES = {
    "max_2": lambda F, x: F.max_pool2d(x, 2),
    "max_3s2p1": lambda F, x: F.max_pool2d(x, 3, 2, 1),
    "max_unbatched": lambda F, x: F.max_pool2d(x[0], 2),
    "avg_3s2p1_no_pad": lambda F, x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
    "avg_2": lambda F, x: F.avg_pool2d(x, 2),
    "adaptive_avg": lambda F, x: F.adaptive_avg_pool2d(x, (3, 2)),
    "adaptive_max": lambda F, x: F.adaptive_max_pool2d(x, 2),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(POOL_CASES))
def test_pooling_gradient_of_gradient(case, device):
    x = rng(1).standard_normal((2, 3, 6, 5))  # distinct values: no ties for max

    def fn(m, x):
        return POOL_CASES[case](F[m.__name__], x * x) ** 2

    check_gradgrad(fn, x, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_dropout_gradient_of_gradient_uses_the_same_mask(device):
    dl.manual_seed(0)
    x = dl.tensor(rng(1).standard_normal(200), device=device, requires_grad=True)
    y = dl.nn.functional.dropout(x, 0.5)
    (g,) = dl.autograd.grad((y**3).sum(), x, create_graph=True)
    (gg,) = dl.autograd.grad(g.sum(), x)
    kept = (y.detach().cpu().numpy() != 0) * 2.0  # the mask times 1 / (1 - p)
    xs = x.detach().cpu().numpy()
    np.testing.assert_allclose(g.detach().cpu().numpy(), 3 * (kept * xs) ** 2 * kept)
    np.testing.assert_allclose(gg.cpu().numpy(), 6 * kept**3 * xs)
    assert 50 < (kept > 0).sum() < 150


W = rng(3).uniform(0.05, 0.95, (5, 4))  # probabilities, weights and class draws
T = (W * 3).astype(np.int64)[:, 0]
# (loss of input x and target y; the tensors of W and T are constants, as torch requires of
# class weights and indices)
LOSS_CASES = {
    "mse_sum": lambda F, m, x, y: F.mse_loss(x, y, reduction="sum"),
    "l1": lambda F, m, x, y: F.l1_loss(x * x, y),
    "smooth_l1": lambda F, m, x, y: F.smooth_l1_loss(x, y, beta=0.8),
    "huber_none": lambda F, m, x, y: F.huber_loss(x, y, delta=0.7, reduction="none") ** 2,
    "nll": lambda F, m, x, y: F.nll_loss(F.log_softmax(x * y, 1), _on(m, x, T)),
    "nll_weighted_none": lambda F, m, x, y: (
        F.nll_loss(x * y, _on(m, x, T), weight=_on(m, x, W[0] + 1), reduction="none") ** 2
    ),
    "bce": lambda F, m, x, y: F.binary_cross_entropy(x.sigmoid(), y.sigmoid(), weight=_on(m, x, W)),
    "bce_with_logits": lambda F, m, x, y: F.binary_cross_entropy_with_logits(
        x, y.sigmoid(), weight=_on(m, x, W), pos_weight=_on(m, x, W[0] + 0.5)
    ),
    "cross_entropy_probs": lambda F, m, x, y: F.cross_entropy(
        x * 2, F.softmax(y, 1), weight=_on(m, x, W[0] + 0.5), label_smoothing=0.1
    ),
    "cross_entropy_probs_none": lambda F, m, x, y: (
        F.cross_entropy(x, F.softmax(y, 1), reduction="none") ** 2
    ),
    "kl_div": lambda F, m, x, y: F.kl_div(
        F.log_softmax(x, 1), F.softmax(y, 1), reduction="batchmean"
    ),
    "kl_div_log_target": lambda F, m, x, y: F.kl_div(
        F.log_softmax(x, 1), F.log_softmax(y, 1), reduction="sum", log_target=True
    ),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(LOSS_CASES))
def test_loss_gradient_of_gradient(case, device):
    x = rng(1).standard_normal((5, 4))
    y = rng(2).standard_normal((5, 4))

    def fn(m, x, y):
        return LOSS_CASES[case](F[m.__name__], m, x, y) * (1 + (x * y).sum())

    check_gradgrad(fn, x, y, device=device)


def _scatter_max(x):
    return dl.zeros(2, dtype=x.dtype).scatter_reduce(0, dl.tensor([0, 1, 0]), x, "amax")


def test_an_op_without_a_differentiable_backward_is_named():
    x = dl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(NotImplementedError, match="ScatterReduce"):
        dl.autograd.grad((_scatter_max(x) ** 2).sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match="cumprod over entries that are zero"):
        dl.autograd.grad((x * dl.tensor([1.0, 0.0, 1.0])).cumprod(0).sum(), x, create_graph=True)
    # without create_graph nothing changes
    (g,) = dl.autograd.grad((_scatter_max(x) ** 2).sum(), x)
    assert g.grad_fn is None and not g.requires_grad and g.tolist() == [0.0, 4.0, 6.0]


def test_hooks_see_and_may_replace_gradients_with_a_graph():
    res = {}
    for m in (torch, dl):
        x = m.tensor([1.0, -2.0], dtype=m.float64, requires_grad=True)
        seen = []
        x.register_hook(lambda g, seen=seen: seen.append(g.requires_grad) or g * 3)
        (g,) = m.autograd.grad((x**3).sum(), x, create_graph=True)
        (gg,) = m.autograd.grad(g.sum(), x)  # the hook runs again, on this gradient
        res[m.__name__] = (seen, g.detach().numpy(), gg.numpy())
    assert res["darklib"][0] == res["torch"][0] == [True, False]
    for d, t in zip(res["darklib"][1:], res["torch"][1:]):
        np.testing.assert_allclose(d, t)


def _cube_backward(ctx, g):
    (x,) = ctx.saved_tensors
    return g * 3 * x**2


class Cube(dl.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    backward = staticmethod(_cube_backward)


class OnceCube(Cube):
    backward = staticmethod(dl.autograd.function.once_differentiable(_cube_backward))


def test_custom_functions_are_differentiated_twice_unless_once_differentiable():
    x = dl.tensor([0.5, 2.0], dtype=dl.float64, requires_grad=True)
    (g,) = dl.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    (gg,) = dl.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), [3.0, 12.0])
    # the incoming gradient 2 * x**3 depends on x, so a second derivative would need
    # the once-differentiable backward's own graph: torch refuses it, and so do we
    (g,) = dl.autograd.grad((OnceCube.apply(x) ** 2).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [0.1875, 192.0])
    with pytest.raises(RuntimeError, match="once_differentiable"):
        dl.autograd.grad(g.sum(), x)


# ======================================================= whole programs, against torch


def _pinn_program(m, **dev):
    """A physics-informed MLP: the residual of u'' + u = 0 at collocation points needs
    d2u/dx2 (two create_graph gradients), then trains the weights through it."""
    gen = np.random.default_rng(5)
    ws = [gen.standard_normal(s) * 0.5 for s in ((16, 1), (16,), (16, 16), (16,), (1, 16))]
    params = [m.tensor(w, requires_grad=True, **dev) for w in ws]
    xs = m.tensor(np.linspace(-1, 1, 12).reshape(12, 1), requires_grad=True, **dev)
    opt = m.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(3):
        w1, b1, w2, b2, w3 = params
        u = F[m.__name__].linear(m.tanh(F[m.__name__].linear(m.tanh(xs @ w1.t() + b1), w2, b2)), w3)
        (du,) = m.autograd.grad(u.sum(), xs, create_graph=True)
        (d2u,) = m.autograd.grad(du.sum(), xs, create_graph=True)
        loss = ((d2u + u) ** 2).mean() + (u[0] - 1).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, [p.detach().cpu().numpy() for p in params]


def _maml_program(m, **dev):
    """One MAML meta-step: an inner SGD step taken with create_graph, the outer loss
    differentiated through it into the initial weights."""
    gen = np.random.default_rng(6)
    w = m.tensor(gen.standard_normal((4, 3)) * 0.5, requires_grad=True, **dev)
    b = m.tensor(np.zeros(4), requires_grad=True, **dev)
    xs, ys = m.tensor(gen.standard_normal((8, 3)), **dev), m.tensor(gen.integers(0, 4, 8), **dev)
    xq, yq = m.tensor(gen.standard_normal((8, 3)), **dev), m.tensor(gen.integers(0, 4, 8), **dev)
    inner = F[m.__name__].cross_entropy(F[m.__name__].linear(xs, w, b), ys)
    gw, gb = m.autograd.grad(inner, (w, b), create_graph=True)
    w2, b2 = w - 0.4 * gw, b - 0.4 * gb
    outer = F[m.__name__].cross_entropy(F[m.__name__].linear(xq, w2, b2), yq)
    outer.backward()
    return [outer.item()], [w.grad.cpu().numpy(), b.grad.cpu().numpy()]


def _unet_critic_program(m, **dev):
    """A gradient penalty on a small U-shaped critic: downsampling conv, max-pool,
    bilinear upsampling, concatenation, instance norm, conv_transpose and a linear head."""
    gen = np.random.default_rng(7)
    nn = m.nn
    m.manual_seed(0)
    down = nn.Conv2d(2, 4, 3, padding=1)
    up = nn.ConvTranspose2d(8, 3, 2, stride=2)
    norm = nn.InstanceNorm2d(3, affine=True)
    head = nn.Linear(3 * 8 * 8, 1)
    mods = [down, up, norm, head]
    for mod in mods:  # the same weights in both libraries
        mod.to(**dev)
        for p in mod.parameters():
            with m.no_grad():
                p.copy_(m.tensor(gen.standard_normal(tuple(p.shape)) * 0.3, dtype=p.dtype, **dev))
    x = m.tensor(gen.standard_normal((2, 2, 8, 8)), requires_grad=True, **dev)
    params = [p for mod in mods for p in mod.parameters()]
    for p in params:
        p.grad = None
    h = F[m.__name__].leaky_relu(down(x), 0.2)
    low = F[m.__name__].max_pool2d(h, 2)
    back = F[m.__name__].interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
    mid = m.cat([h, back], 1)
    y = norm(up(F[m.__name__].avg_pool2d(mid, 2)))
    score = head(y.flatten(1)).sum()
    (g,) = m.autograd.grad(score, x, create_graph=True)
    penalty = ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
    (penalty + score).backward()
    return [penalty.item()], [p.grad.cpu().numpy() for p in params]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("program", [_pinn_program, _maml_program, _unet_critic_program])
def test_higher_order_programs_follow_torch(program, device):
    torch.set_default_dtype(torch.float64)
    dl.set_default_dtype(dl.float64)
    try:
        t_losses, t_arrays = program(torch)
        d_losses, d_arrays = program(dl, device=device)
    finally:
        torch.set_default_dtype(torch.float32)
        dl.set_default_dtype(dl.float32)
    np.testing.assert_allclose(d_losses, t_losses, rtol=1e-4, atol=1e-6)
    for d, t in zip(d_arrays, t_arrays):
        np.testing.assert_allclose(d, t, rtol=1e-3, atol=1e-6)


# ===================================================== random compositions, against torch

_UNARY = [
    lambda m, a: m.tanh(a),
    lambda m, a: m.sigmoid(a) * 2,
    lambda m, a: a * a,
    lambda m, a: m.exp(a * 0.3),
    lambda m, a: m.sin(a),
    lambda m, a: F[m.__name__].softplus(a),
    lambda m, a: F[m.__name__].gelu(a),
    lambda m, a: a.softmax(-1),
    lambda m, a: a.log_softmax(0),
    lambda m, a: a.transpose(0, 1).reshape(a.shape),
    lambda m, a: a.flip(0),
    lambda m, a: a.cumsum(0),  # (along 1, after softmax(-1), a column is constant: std 0)
    lambda m, a: (a - a.mean(0, keepdim=True)) / (a.std(0, keepdim=True) + 1),
    lambda m, a: F[m.__name__].layer_norm(a, (a.shape[-1],)),
    lambda m, a: m.sqrt(a * a + 1),
    lambda m, a: a.sum(1, keepdim=True) * a,
]
_BINARY = [
    lambda m, a, b: a + b,
    lambda m, a, b: a * b,
    lambda m, a, b: a / (b * b + 1),
    lambda m, a, b: a @ b.t() @ a * 0.1,
    lambda m, a, b: m.maximum(a, b * 0.9),
    lambda m, a, b: m.where(b > 0, a, a * b),
    lambda m, a, b: m.cat([a[:, :2], b[:, 2:]], 1),
    lambda m, a, b: a * b.mean(0),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", range(40))
def test_random_compositions_gradient_of_gradient_follows_torch(seed, device):
    pick = np.random.default_rng(seed)
    steps = [
        (int(pick.integers(len(_BINARY))), True)
        if pick.random() < 0.4
        else (int(pick.integers(len(_UNARY))), False)
        for _ in range(5)
    ]
    if not any(binary for _, binary in steps):  # b must take part (torch refuses otherwise)
        steps[-1] = (int(pick.integers(len(_BINARY))), True)

    def fn(m, a, b):
        h = a
        for i, binary in steps:
            h = _BINARY[i](m, h, b) if binary else _UNARY[i](m, h)
        return h

    a = rng(100 + seed).standard_normal((3, 4))
    b = rng(200 + seed).standard_normal((3, 4))
    check_gradgrad(fn, a, b, device=device, atol=1e-8, rtol=1e-6, fd=False)


# ================================================== found in review (session 5), pinned


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "case",
    [
        "var_float32_nonleaf",
        "std_float32",
        "logcumsumexp_large",
        "elu_large_positive",
        "selu_large_positive",
    ],
)
def test_float32_and_large_value_cases_follow_torch(case, device):
    fns = {
        "var_float32_nonleaf": (lambda m, x: ((x * 1).var()) ** 2, [1.0, 2.0, 4.0]),
        "std_float32": (lambda m, x: ((x * 1).std(0)) ** 3, [1.0, 2.0, 4.0, -1.0]),
        "logcumsumexp_large": (
            lambda m, x: (m.logcumsumexp(x.reshape(1, 3), 1) * _on(m, x, [[1.0, 2, 3]])).sum(),
            [100.0, 101.0, 99.0],
        ),
        "elu_large_positive": (lambda m, x: F[m.__name__].elu(x).sum(), [100.0, -1.0, 0.5]),
        "selu_large_positive": (
            lambda m, x: (F[m.__name__].selu(x) ** 2).sum(),
            [100.0, -1.0, 0.5],
        ),
    }
    fn, values = fns[case]
    out = []
    for m in (torch, dl):
        kw = {"device": device} if m is dl else {}
        x = m.tensor(np.array(values, np.float32), requires_grad=True, **kw)
        (g,) = m.autograd.grad(fn(m, x), x, create_graph=True)
        (gg,) = m.autograd.grad((g * g).sum(), x)
        out.append((g.detach().cpu().numpy(), gg.cpu().numpy()))
    for d, t in zip(out[1], out[0]):
        assert np.isfinite(d).all()
        np.testing.assert_allclose(d, t, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_grad_outputs_of_another_dtype_keep_their_graph(device):
    x = dl.tensor([1.0, 2.0, 4.0], device=device, requires_grad=True)
    v = dl.tensor([1.0, 2.0, 3.0], dtype=dl.float64, device=device, requires_grad=True)
    (g,) = dl.autograd.grad(x * x, x, v, create_graph=True)
    (gv,) = dl.autograd.grad(g.sum(), v)
    assert gv.tolist() == [2.0, 4.0, 8.0] and gv.dtype == dl.float64


@pytest.mark.parametrize("device", DEVICES)
def test_a_leaf_changed_in_place_after_forward_is_differentiated_as_forward_saw_it(device):
    """var keeps the centred input, not the leaf: create_graph must use that saved value,
    as the plain backward does, not the leaf's new one."""
    x = dl.tensor([1.0, 2.0, 4.0, 3.0], dtype=dl.float64, device=device, requires_grad=True)
    y = x.reshape(1, 4).var(1).sum()
    with dl.no_grad():
        x.mul_(3)
    (g,) = dl.autograd.grad(y, x, create_graph=True, retain_graph=True)
    (plain,) = dl.autograd.grad(y, x)
    np.testing.assert_allclose(g.detach().cpu().numpy(), plain.cpu().numpy())
    np.testing.assert_allclose(plain.cpu().numpy(), 2 * (np.array([1, 2, 4, 3]) - 2.5) / 3)


_PIECEWISE_LINEAR = {
    "relu": lambda m, F, x: F.relu(x),
    "leaky_relu": lambda m, F, x: F.leaky_relu(x, 0.1),
    "abs": lambda m, F, x: m.abs(x),
    "l1_loss": lambda m, F, x: F.l1_loss(x, m.zeros_like(x)),
    "max_pool2d": lambda m, F, x: F.max_pool2d(x.reshape(1, 2, 4, 4), 2),
    "avg_pool2d": lambda m, F, x: F.avg_pool2d(x.reshape(1, 2, 4, 4), 2),
    "max_pool1d": lambda m, F, x: F.max_pool1d(x.reshape(2, 2, 8), 2),
    "adaptive_avg_pool2d": lambda m, F, x: F.adaptive_avg_pool2d(x.reshape(1, 2, 4, 4), 3),
    "adaptive_max_pool2d": lambda m, F, x: F.adaptive_max_pool2d(x.reshape(1, 2, 4, 4), 3),
    "max_pool3d": lambda m, F, x: F.max_pool3d(x.reshape(1, 1, 2, 4, 4), 2),
    "pad_reflect": lambda m, F, x: F.pad(x.reshape(1, 2, 4, 4), (1, 1, 1, 1), mode="reflect"),
    "pad_replicate": lambda m, F, x: F.pad(x.reshape(1, 2, 4, 4), (2, 0, 1, 1), "replicate"),
    "nll_loss": lambda m, F, x: F.nll_loss(x.reshape(4, 8), _on(m, x, [0, 1, 2, 7])),
    "hardtanh": lambda m, F, x: F.hardtanh(x, -0.5, 0.7),
    "relu6": lambda m, F, x: F.relu6(x * 4),
    "hardsigmoid": lambda m, F, x: F.hardsigmoid(x * 4),
    "threshold": lambda m, F, x: F.threshold(x, 0.1, 2.0),
    "hardshrink": lambda m, F, x: F.hardshrink(x),
    "softshrink": lambda m, F, x: F.softshrink(x, 0.3),
    "prelu": lambda m, F, x: F.prelu(
        x.reshape(2, 4, 4), m.tensor([0.25, -0.5, 1.5, 0.0], dtype=m.float64, device=x.device)
    ),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(_PIECEWISE_LINEAR))
def test_second_derivative_of_a_piecewise_linear_op_is_zeros_not_unused(name, device):
    """torch's backward of relu, abs, pooling, the edge pads and nll_loss reads the op's
    input or output, so the first gradient is on the input's graph and its derivative with
    respect to the input is zeros (an input Hessian of a ReLU network): not an error that
    the input was unused."""
    fn = _PIECEWISE_LINEAR[name]
    v = rng(3).standard_normal(32)
    xt = torch.tensor(v, requires_grad=True)
    (gt,) = torch.autograd.grad(fn(torch, F["torch"], xt).sum(), xt, create_graph=True)
    x = dl.tensor(v, device=device, requires_grad=True)
    (g,) = dl.autograd.grad(fn(dl, F["darklib"], x).sum(), x, create_graph=True)
    assert g.requires_grad == gt.requires_grad
    np.testing.assert_allclose(g.detach().cpu().numpy(), gt.detach().numpy())
    (gg,) = dl.autograd.grad((g * g).sum(), x)
    np.testing.assert_array_equal(gg.cpu().numpy(), np.zeros(32))


@pytest.mark.parametrize("device", DEVICES)
def test_input_hessian_of_a_relu_network_as_torch(device):
    """The gradient-penalty pattern: the input gradient of a ReLU network, differentiated
    again with respect to both the input (zeros) and the weights."""
    r = rng(4)
    xv, wv = r.standard_normal((5, 3)), r.standard_normal((3, 4))
    res = []
    for m in (torch, dl):
        kw = {"device": device} if m is dl else {}
        x, w = m.tensor(xv, requires_grad=True, **kw), m.tensor(wv, requires_grad=True, **kw)
        (gx,) = m.autograd.grad(m.relu(x @ w).sum(), x, create_graph=True)
        grads = m.autograd.grad((gx**2).sum(), [x, w])
        res.append([t.detach().cpu().numpy() for t in grads])
    for d, t in zip(res[1], res[0]):
        np.testing.assert_allclose(d, t, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(res[1][0], np.zeros((5, 3)))
