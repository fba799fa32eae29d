"""nn.MultiheadAttention and the transformer layers against PyTorch's.

torch's state_dict is copied into darklib through numpy; both run in float64 on the same
inputs (dropout 0, so deterministic), and the outputs, the gradients of the inputs and of
every parameter are compared. Then dropout, the errors for bad input, and the functional
form (F.multi_head_attention_forward) with static keys and values.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import darklib as dl
from darklib import nn
from darklib.errors import InvalidType, InvalidValue
from darklib.nn import functional as F
from tests.oracle import DEVICES, assert_close, rng

TOL = {"atol": 1e-10, "rtol": 1e-8}
E, H, L, S, N = 8, 2, 5, 6, 3  # embed dim, heads, target and source lengths, batch


pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")


@pytest.fixture(autouse=True)
def _torch_setup(one_torch_thread):
    torch.manual_seed(0)


def _pair(d_mod: nn.Module, t_mod: torch.nn.Module, device: str) -> tuple:
    """float64 twins with torch's weights copied into darklib."""
    t_mod = t_mod.double()
    d_mod = d_mod.double()
    d_mod.load_state_dict({k: dl.tensor(v.detach().numpy()) for k, v in t_mod.state_dict().items()})
    return d_mod.to(device), t_mod


def check(
    d_mod: nn.Module,
    t_mod: torch.nn.Module,
    arrays: list[np.ndarray],
    kwargs: dict | None = None,
    device: str = "cpu",
) -> None:
    """Call both modules on ``arrays`` (the same numpy object twice is the same tensor, as
    in self-attention) and ``kwargs`` (numpy masks become tensors); compare the outputs,
    then the gradients of the inputs and every parameter after a random projection."""
    d_mod, t_mod = _pair(d_mod, t_mod, device)
    d_leaf, t_leaf, d_in, t_in = {}, {}, [], []
    for a in arrays:
        if id(a) not in d_leaf:
            d_leaf[id(a)] = dl.tensor(a, device=device, requires_grad=True)
            t_leaf[id(a)] = torch.tensor(a, requires_grad=True)
        d_in.append(d_leaf[id(a)])
        t_in.append(t_leaf[id(a)])
    kwargs = kwargs or {}
    d_kw = {
        k: dl.tensor(v, device=device) if isinstance(v, np.ndarray) else v
        for k, v in kwargs.items()
    }
    t_kw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    d_out, t_out = d_mod(*d_in, **d_kw), t_mod(*t_in, **t_kw)
    d_out = d_out if isinstance(d_out, tuple) else (d_out,)
    t_out = t_out if isinstance(t_out, tuple) else (t_out,)
    assert len(d_out) == len(t_out)
    r = rng(7)
    d_loss, t_loss = 0, 0
    for i, (d, t) in enumerate(zip(d_out, t_out)):
        if t is None:
            assert d is None, f"output {i}: torch gives None"
            continue
        assert d.device.type == device
        assert_close(d, t, what=f"output {i}", **TOL)
        g = r.standard_normal(tuple(t.shape))
        d_loss = d_loss + (d * dl.tensor(g, device=device)).sum()
        t_loss = t_loss + (t * torch.tensor(g)).sum()
    d_loss.backward()
    t_loss.backward()
    for i, (d, t) in enumerate(zip(d_leaf.values(), t_leaf.values())):
        assert_close(d.grad, t.grad, what=f"grad of input {i}", **TOL)
    d_params = dict(d_mod.named_parameters())
    t_params = dict(t_mod.named_parameters())
    assert list(d_params) == list(t_params)
    for name, tp in t_params.items():
        dp = d_params[name]
        if tp.grad is None:
            assert dp.grad is None or not np.any(dp.grad.cpu().numpy()), name
        else:
            assert_close(dp.grad, tp.grad, what=f"grad of {name}", **TOL)


def _masks(r: np.random.Generator, lq: int = L, ls: int = S, n: int = N, heads: int = H) -> dict:
    """Random masks, each leaving every query at least one key (column 0)."""
    am = r.random((lq, ls)) < 0.4
    am[:, 0] = False
    am3 = r.random((n * heads, lq, ls)) < 0.4
    am3[:, :, 0] = False
    kpm = r.random((n, ls)) < 0.4
    kpm[:, 0] = False
    fam = r.standard_normal((lq, ls))
    fam[am] = -np.inf
    fkpm = np.where(kpm, -np.inf, r.standard_normal((n, ls)))
    return {"am": am, "am3": am3, "kpm": kpm, "fam": fam, "fkpm": fkpm}


M = _masks(rng(3))
CAUSAL = np.triu(np.ones((L, L), bool), 1)

MHA_CASES = {
    "plain": ({}, {}),
    "bool_mask": ({}, {"attn_mask": M["am"][:, :S]}),
    "float_mask": ({}, {"attn_mask": M["fam"]}),
    "bool_mask_3d": ({}, {"attn_mask": M["am3"]}),
    "bool_padding": ({}, {"key_padding_mask": M["kpm"]}),
    "float_padding": ({}, {"key_padding_mask": M["fkpm"]}),
    "both_bool": ({}, {"attn_mask": M["am3"], "key_padding_mask": M["kpm"]}),
    "both_float": ({}, {"attn_mask": M["fam"], "key_padding_mask": M["fkpm"]}),
    "no_weights": (
        {},
        {"attn_mask": M["am3"], "key_padding_mask": M["kpm"], "need_weights": False},
    ),
    "no_weights_float": ({}, {"attn_mask": M["fam"], "need_weights": False}),
    "per_head_weights": ({}, {"attn_mask": M["am"], "average_attn_weights": False}),
    "batch_first": ({"batch_first": True}, {"key_padding_mask": M["kpm"]}),
    "kdim_vdim": ({"kdim": 5, "vdim": 3}, {"attn_mask": M["am"], "key_padding_mask": M["kpm"]}),
    "no_bias": ({"bias": False}, {"attn_mask": M["am"]}),
    "bias_kv": ({"add_bias_kv": True}, {"attn_mask": M["am3"], "key_padding_mask": M["kpm"]}),
    "zero_attn": ({"add_zero_attn": True}, {"attn_mask": M["fam"], "key_padding_mask": M["fkpm"]}),
    "bias_kv_zero_attn_no_weights": (
        {"add_bias_kv": True, "add_zero_attn": True},
        {"attn_mask": M["am"], "need_weights": False},
    ),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(MHA_CASES))
def test_mha_cross_attention(case, device):
    ctor, kwargs = MHA_CASES[case]
    r = rng(1)
    bf = ctor.get("batch_first", False)
    kd, vd = ctor.get("kdim", E), ctor.get("vdim", E)

    def seq(length: int, features: int) -> np.ndarray:
        shape = (N, length, features) if bf else (length, N, features)
        return r.standard_normal(shape)

    q, k, v = seq(L, E), seq(S, kd), seq(S, vd)
    check(
        nn.MultiheadAttention(E, H, **ctor),
        torch.nn.MultiheadAttention(E, H, **ctor),
        [q, k, v],
        kwargs,
        device,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_self_attention_causal(batch_first, device):
    """q is k is v (the packed projection), with the causal hint on both paths."""
    x = rng(2).standard_normal((N, L, E) if batch_first else (L, N, E))
    for need_weights in (True, False):
        kw = {"attn_mask": CAUSAL, "is_causal": True, "need_weights": need_weights}
        mk = {"batch_first": batch_first}
        check(
            nn.MultiheadAttention(E, H, **mk),
            torch.nn.MultiheadAttention(E, H, **mk),
            [x, x, x],
            kw,
            device,
        )
    kw = {"attn_mask": CAUSAL, "key_padding_mask": M["kpm"][:, :L], "need_weights": False}
    check(
        nn.MultiheadAttention(E, H, batch_first=batch_first),
        torch.nn.MultiheadAttention(E, H, batch_first=batch_first),
        [x, x, x],
        kw,
        device,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_unbatched(need_weights, device):
    r = rng(4)
    q, k, v = r.standard_normal((L, E)), r.standard_normal((S, 5)), r.standard_normal((S, 3))
    am3 = M["am3"][:H]
    kw = {"attn_mask": am3, "key_padding_mask": M["kpm"][0], "need_weights": need_weights}
    ctor = {"kdim": 5, "vdim": 3}
    check(
        nn.MultiheadAttention(E, H, **ctor),
        torch.nn.MultiheadAttention(E, H, **ctor),
        [q, k, v],
        kw,
        device,
    )
    kw = {"attn_mask": M["am"][:, :L], "average_attn_weights": False, "need_weights": need_weights}
    check(nn.MultiheadAttention(E, H), torch.nn.MultiheadAttention(E, H), [q, q, q], kw, device)


@pytest.mark.parametrize("device", DEVICES)
def test_mha_fully_masked_rows_match_torch(device):
    """A query with every key masked: NaN weights and output with need_weights (torch's
    softmax), a zero attention (output = out_proj bias) without."""
    x = rng(5).standard_normal((L, N, E))
    kpm = np.zeros((N, L), bool)
    kpm[1] = True
    d, t = _pair(nn.MultiheadAttention(E, H), torch.nn.MultiheadAttention(E, H), device)
    d_out, d_w = d(
        *[dl.tensor(x, device=device)] * 3, key_padding_mask=dl.tensor(kpm, device=device)
    )
    t_out, t_w = t(*[torch.tensor(x)] * 3, key_padding_mask=torch.tensor(kpm))
    assert np.isnan(d_w.detach().cpu().numpy()[1]).all()
    assert_close(d_out, t_out, **TOL)
    assert_close(d_w, t_w, **TOL)
    check(
        nn.MultiheadAttention(E, H),
        torch.nn.MultiheadAttention(E, H),
        [x, x, x],
        {"key_padding_mask": kpm, "need_weights": False},
        device,
    )


def test_mha_parameters_and_init():
    for ctor in ({}, {"kdim": 5, "vdim": 3}, {"bias": False, "add_bias_kv": True}):
        d, t = nn.MultiheadAttention(E, H, **ctor), torch.nn.MultiheadAttention(E, H, **ctor)
        d_sd, t_sd = d.state_dict(), t.state_dict()
        assert list(d_sd) == list(t_sd)
        assert all(tuple(d_sd[k].shape) == tuple(t_sd[k].shape) for k in t_sd)
        assert all(p.dtype == dl.float32 for p in d.parameters())
    d = nn.MultiheadAttention(64, 4, add_bias_kv=True)
    bound = np.sqrt(6 / (64 + 3 * 64))  # Xavier-uniform of the packed (3E, E) weight
    w = d.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert not d.in_proj_bias.detach().numpy().any() and not d.out_proj.bias.detach().numpy().any()
    assert 0.1 < d.bias_k.detach().numpy().std() < 0.2  # Xavier-normal: std sqrt(2 / 128)
    assert d.q_proj_weight is None and d.head_dim == 16 and d._qkv_same_embed_dim
    d2 = nn.MultiheadAttention(8, 2, kdim=4, vdim=4)
    assert d2.in_proj_weight is None and tuple(d2.k_proj_weight.shape) == (8, 4)
    assert d2.bias_k is None and d2.bias_v is None


@pytest.mark.parametrize("device", DEVICES)
def test_functional_static_kv_matches_torch(device):
    r = rng(6)
    q = r.standard_normal((L, N, E))
    sk, sv = r.standard_normal((N * H, S, E // H)), r.standard_normal((N * H, S, E // H))
    w_in, b_in = r.standard_normal((3 * E, E)), r.standard_normal(3 * E)
    w_out, b_out = r.standard_normal((E, E)), r.standard_normal(E)
    arrays = [q, sk, sv, w_in, b_in, w_out, b_out]
    d_x = [dl.tensor(a, device=device, requires_grad=True) for a in arrays]
    t_x = [torch.tensor(a, requires_grad=True) for a in arrays]

    def run(f, x, tensor):
        return f(
            x[0],
            x[0],
            x[0],
            E,
            H,
            x[3],
            x[4],
            None,
            None,
            False,
            0.0,
            x[5],
            x[6],
            key_padding_mask=tensor(M["kpm"]),
            static_k=x[1],
            static_v=x[2],
        )

    d_out, d_w = run(F.multi_head_attention_forward, d_x, lambda a: dl.tensor(a, device=device))
    t_out, t_w = run(torch.nn.functional.multi_head_attention_forward, t_x, torch.tensor)
    assert_close(d_out, t_out, **TOL)
    assert_close(d_w, t_w, **TOL)
    (d_out.sum() + (d_w * 3).sum()).backward()
    (t_out.sum() + (t_w * 3).sum()).backward()
    for i, (d, t) in enumerate(zip(d_x, t_x)):
        assert_close(d.grad, t.grad, what=f"grad of argument {i}", **TOL)


LAYER_CASES = {
    "post_norm_relu": {},
    "pre_norm_gelu": {"norm_first": True, "activation": "gelu"},
    "batch_first": {"batch_first": True},
    "no_bias_callable": {"bias": False, "activation": "callable"},
}


def _layer_kw(case: str) -> tuple[dict, dict]:
    """(darklib kwargs, torch kwargs) of a layer case; 'callable' is a tanh function."""
    kw = {"dim_feedforward": 16, "dropout": 0.0, **LAYER_CASES[case]}
    d_kw, t_kw = dict(kw), dict(kw)
    if kw.get("activation") == "callable":
        d_kw["activation"], t_kw["activation"] = dl.tanh, torch.tanh
    return d_kw, t_kw


def _seq(r: np.random.Generator, length: int, batch_first: bool) -> np.ndarray:
    return r.standard_normal((N, length, E) if batch_first else (length, N, E))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_encoder_layer(case, device):
    d_kw, t_kw = _layer_kw(case)
    x = _seq(rng(8), L, d_kw.get("batch_first", False))
    masks = {"src_mask": M["fam"][:, :L], "src_key_padding_mask": M["fkpm"][:, :L]}
    check(
        nn.TransformerEncoderLayer(E, H, **d_kw),
        torch.nn.TransformerEncoderLayer(E, H, **t_kw),
        [x],
        masks,
        device,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_decoder_layer(case, device):
    d_kw, t_kw = _layer_kw(case)
    bf = d_kw.get("batch_first", False)
    r = rng(9)
    tgt, mem = _seq(r, L, bf), _seq(r, S, bf)
    masks = {
        "tgt_mask": CAUSAL,
        "memory_mask": M["am"],
        "tgt_key_padding_mask": M["kpm"][:, :L],
        "memory_key_padding_mask": M["kpm"],
    }
    check(
        nn.TransformerDecoderLayer(E, H, **d_kw),
        torch.nn.TransformerDecoderLayer(E, H, **t_kw),
        [tgt, mem],
        masks,
        device,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_and_decoder_stacks(batch_first, device):
    kw = {"dim_feedforward": 16, "dropout": 0.0, "batch_first": batch_first}
    r = rng(10)
    x, mem = _seq(r, L, batch_first), _seq(r, S, batch_first)
    causal = nn.Transformer.generate_square_subsequent_mask(L, dtype=dl.float64).numpy()
    d_enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, **kw), 2, nn.LayerNorm(E))
    t_enc = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(E, H, **kw),
        2,
        torch.nn.LayerNorm(E),
        enable_nested_tensor=False,
    )
    check(d_enc, t_enc, [x], {"mask": causal, "is_causal": True}, device)
    check(d_enc, t_enc, [x], {"mask": causal, "src_key_padding_mask": M["fkpm"][:, :L]}, device)
    d_dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(E, H, **kw), 2)
    t_dec = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(E, H, **kw), 2)
    masks = {"tgt_mask": causal, "memory_key_padding_mask": M["kpm"], "tgt_is_causal": True}
    check(d_dec, t_dec, [x, mem], masks, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer(batch_first, device):
    kw = {"num_encoder_layers": 2, "num_decoder_layers": 1, "dim_feedforward": 16}
    kw |= {"dropout": 0.0, "batch_first": batch_first}
    r = rng(11)
    src, tgt = _seq(r, S, batch_first), _seq(r, L, batch_first)
    masks = {
        "tgt_mask": torch.nn.Transformer.generate_square_subsequent_mask(L).double().numpy(),
        "src_key_padding_mask": M["kpm"],
        "memory_key_padding_mask": M["kpm"],
    }
    check(nn.Transformer(E, H, **kw), torch.nn.Transformer(E, H, **kw), [src, tgt], masks, device)


@pytest.mark.parametrize("device", DEVICES)
def test_unbatched_layers(device):
    kw = {"dim_feedforward": 16, "dropout": 0.0, "norm_first": True}
    r = rng(12)
    src, tgt = r.standard_normal((L, E)), r.standard_normal((L, E))
    masks = {"src_mask": M["am3"][0, :, :L], "src_key_padding_mask": M["kpm"][0, :L]}
    check(
        nn.TransformerEncoderLayer(E, H, **kw),
        torch.nn.TransformerEncoderLayer(E, H, **kw),
        [src],
        masks,
        device,
    )
    tkw = {"num_encoder_layers": 1, "num_decoder_layers": 1, **kw}
    check(
        nn.Transformer(E, H, **tkw),
        torch.nn.Transformer(E, H, **tkw),
        [src, tgt],
        {"tgt_mask": CAUSAL},
        device,
    )


def test_structure_and_init_match_torch():
    kw = {"num_encoder_layers": 2, "num_decoder_layers": 2, "dim_feedforward": 16}
    d, t = nn.Transformer(E, H, **kw), torch.nn.Transformer(E, H, **kw)
    d_sd, t_sd = d.state_dict(), t.state_dict()
    assert list(d_sd) == list(t_sd)
    assert all(tuple(d_sd[k].shape) == tuple(t_sd[k].shape) for k in t_sd)
    assert [n for n, _ in d.named_modules()] == [n for n, _ in t.named_modules()]
    # Xavier-uniform over every matrix: linear1 (16, 8) is bounded by sqrt(6 / 24)
    w = d.encoder.layers[0].linear1.weight.detach().numpy()
    assert np.abs(w).max() <= np.sqrt(6 / 24) and np.abs(w).max() > 0.35
    # the copies are independent
    assert d.encoder.layers[0].linear1.weight is not d.encoder.layers[1].linear1.weight
    for sz in (0, 1, 4):
        assert_close(
            nn.Transformer.generate_square_subsequent_mask(sz),
            torch.nn.Transformer.generate_square_subsequent_mask(sz),
        )
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H), 1, enable_nested_tensor=True)
    assert enc.enable_nested_tensor and not enc.use_nested_tensor and enc.mask_check


def test_dropout_train_vs_eval():
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=16, dropout=0.5)
    mha = nn.MultiheadAttention(E, H, dropout=0.5)
    x = dl.randn(L, N, E)
    a, b = layer(x), layer(x)
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())
    (a.sum() + b.sum()).backward()  # the dropout masks are part of the graph
    assert layer.linear1.weight.grad is not None
    w1, w2 = mha(x, x, x)[1], mha(x, x, x)[1]
    assert not np.allclose(w1.detach().numpy(), w2.detach().numpy())
    layer.eval()
    mha.eval()
    assert_close(layer(x), layer(x), atol=0, rtol=0)
    assert_close(mha(x, x, x)[1], mha(x, x, x)[1], atol=0, rtol=0)
    assert_close(mha(x, x, x)[1].sum(-1), np.ones((N, L), np.float32))


def test_bad_input_errors():
    with pytest.raises(
        InvalidValue, match=r"embed_dim \(10\) must be divisible by num_heads \(4\)"
    ):
        nn.MultiheadAttention(10, 4)
    with pytest.raises(InvalidValue, match=r"dropout probability"):
        nn.MultiheadAttention(8, 2, dropout=1.5)
    with pytest.raises(InvalidValue, match=r"activation should be 'relu' or 'gelu', not 'tanh'"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    mha = nn.MultiheadAttention(E, H)
    x = dl.randn(L, N, E)
    with pytest.raises(
        InvalidValue, match=r"2-D attn_mask has shape \(4, 5\), expected .*\(5, 5\)"
    ):
        mha(x, x, x, attn_mask=dl.zeros(4, 5, dtype=dl.bool))
    with pytest.raises(InvalidValue, match=r"3-D attn_mask has shape \(2, 5, 5\).*\(6, 5, 5\)"):
        mha(x, x, x, attn_mask=dl.zeros(2, 5, 5, dtype=dl.bool))
    with pytest.raises(InvalidValue, match=r"attn_mask must be 2-D .* got \(1, 1, 5, 5\)"):
        mha(x, x, x, attn_mask=dl.zeros(1, 1, 5, 5, dtype=dl.bool))
    with pytest.raises(InvalidValue, match=r"key_padding_mask has shape \(3, 4\).*\(3, 5\)"):
        mha(x, x, x, key_padding_mask=dl.zeros(3, 4, dtype=dl.bool))
    with pytest.raises(InvalidValue, match=r"key_padding_mask must be 2-D"):
        mha(x, x, x, key_padding_mask=dl.zeros(5, dtype=dl.bool))
    with pytest.raises(InvalidType, match=r"only bool and floating-point attn_mask.*int64"):
        mha(x, x, x, attn_mask=dl.zeros(5, 5, dtype=dl.int64))
    with pytest.raises(InvalidValue, match=r"query \(5, 3, 8\), key \(5, 2, 8\)"):
        mha(x, dl.randn(L, 2, E), dl.randn(L, 2, E))
    bf = nn.MultiheadAttention(E, H, batch_first=True)
    with pytest.raises(InvalidValue, match=r"query \(3, 5, 8\), key \(2, 5, 8\).*batch_first"):
        bf(dl.randn(N, L, E), dl.randn(2, L, E), dl.randn(2, L, E))
    with pytest.raises(InvalidValue, match=r"query \(5, 3, 6\) has 6 features.*embed_dim=8"):
        mha(*[dl.randn(L, N, 6)] * 3)
    with pytest.raises(InvalidValue, match=r"key \(5, 3, 4\) must have embed_dim=8"):
        mha(x, dl.randn(L, N, 4), dl.randn(L, N, 4))
    with pytest.raises(InvalidValue, match=r"key and value must be 3-D too.*key \(5, 8\)"):
        mha(x, dl.randn(L, E), dl.randn(L, E))
    with pytest.raises(InvalidValue, match=r"unbatched 2-D \(L, E\) or batched 3-D"):
        mha(*[dl.randn(1, L, N, E)] * 3)
    with pytest.raises(InvalidValue, match=r"is_causal=True .* needs the causal attn_mask"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(InvalidValue, match=r"unbatched query, a 3-D attn_mask must have shape"):
        mha(*[dl.randn(L, E)] * 3, attn_mask=dl.zeros(3, L, L, dtype=dl.bool))
    model = nn.Transformer(E, H, 1, 1, 16)
    with pytest.raises(InvalidValue, match=r"batch number of src \(6, 3, 8\) and tgt \(5, 2, 8\)"):
        model(dl.randn(S, N, E), dl.randn(L, 2, E))
    with pytest.raises(InvalidValue, match=r"d_model=8"):
        model(dl.randn(S, N, 4), dl.randn(L, N, 4))


@pytest.mark.parametrize("device", DEVICES)
def test_mha_double_backward_matches_torch(device):
    """Second-order gradients through the weights path (torch's SDPA path has none)."""
    d, t = _pair(nn.MultiheadAttention(4, 2), torch.nn.MultiheadAttention(4, 2), device)
    a = rng(13).standard_normal((3, 2, 4))
    causal = np.triu(np.ones((3, 3), bool), 1)
    x, tx = dl.tensor(a, device=device, requires_grad=True), torch.tensor(a, requires_grad=True)
    y = d(x, x, x, attn_mask=dl.tensor(causal, device=device))[0]
    ty = t(tx, tx, tx, attn_mask=torch.tensor(causal))[0]
    (g,) = dl.autograd.grad((y**2).sum(), x, create_graph=True)
    (tg,) = torch.autograd.grad((ty**2).sum(), tx, create_graph=True)
    (gg,) = dl.autograd.grad((g**2).sum(), x)
    (tgg,) = torch.autograd.grad((tg**2).sum(), tx)
    assert_close(gg, tgg, **TOL)


@pytest.mark.parametrize("device", DEVICES)
def test_sdpa_edge_cases_found_by_review(device):
    """A float32 mask on a float16 query keeps float16; a mask that would enlarge the
    output is refused (torch: 'doesn't match the broadcast shape'); an empty embedding
    averages the values; a static_k whose length differs from the values is refused."""
    q = dl.randn(1, 3, 4, device=device).to(dl.float16)
    mask = dl.zeros(3, 3, device=device)
    assert F.scaled_dot_product_attention(q, q, q, attn_mask=mask).dtype == dl.float16
    x = dl.randn(2, 3, 4, device=device)
    with pytest.raises(InvalidValue, match=r"attn_mask \(5, 2, 3, 3\) does not broadcast"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=dl.zeros(5, 2, 3, 3, device=device))
    v = rng(3).standard_normal((1, 3, 3))
    want = torch.nn.functional.scaled_dot_product_attention(
        torch.zeros(1, 2, 0, dtype=torch.float64),
        torch.zeros(1, 3, 0, dtype=torch.float64),
        torch.tensor(v),
    )
    got = F.scaled_dot_product_attention(
        dl.zeros(1, 2, 0, dtype=dl.float64, device=device),
        dl.zeros(1, 3, 0, dtype=dl.float64, device=device),
        dl.tensor(v, device=device),
    )
    np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-12)
    e, h = 4, 2
    q, k = dl.randn(1, 1, e, device=device), dl.randn(2, 1, e, device=device)
    w, b = dl.randn(3 * e, e, device=device), dl.zeros(3 * e, device=device)
    ow, ob = dl.randn(e, e, device=device), dl.zeros(e, device=device)
    with pytest.raises(InvalidValue, match="1 keys but 2 values"):
        F.multi_head_attention_forward(
            q,
            k,
            k,
            e,
            h,
            w,
            b,
            None,
            None,
            False,
            0.0,
            ow,
            ob,
            static_k=dl.randn(2, 1, 2, device=device),
        )
