"""Recurrent layers (RNN, LSTM, GRU), their cells and nn.utils.rnn against PyTorch.

Each layer is built in both libraries, torch's state dict copied over (through numpy), and
the outputs, final states and the gradients of the input, the initial states and every
parameter compared in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import darklib as dl
from darklib import nn
from darklib.nn.utils import rnn as rnn_utils
from tests.oracle import DEVICES, assert_close, rng

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {"atol": 1e-10, "rtol": 1e-8}


def _np(t):
    return np.asarray(t.detach().cpu().numpy())


def build(kind, *args, **kwargs):
    """The same layer in both libraries, float64, with torch's weights copied over."""
    t_mod = getattr(torch.nn, kind)(*args, **kwargs).double()
    d_mod = getattr(nn, kind)(*args, **kwargs).double()
    d_mod.load_state_dict({k: dl.tensor(_np(v)) for k, v in t_mod.state_dict().items()})
    return d_mod, t_mod


def leaves(arrays, device, grad=True):
    d = [None if a is None else dl.tensor(a, device=device, requires_grad=grad) for a in arrays]
    t = [None if a is None else torch.tensor(a, requires_grad=grad) for a in arrays]
    return d, t


def flat(out):
    if isinstance(out, tuple | list):
        return [o for x in out for o in flat(x)]
    return [out]


def backward_both(d_outs, t_outs, seed=3):
    """Backward of sum(out * random) over all outputs, the same on both sides."""
    r = rng(seed)
    d_sum = t_sum = 0
    for d, t in zip(d_outs, t_outs):
        g = r.standard_normal(tuple(t.shape))
        d_sum = d_sum + (d * dl.tensor(g, device=d.device)).sum()
        t_sum = t_sum + (t * torch.tensor(g)).sum()
    d_sum.backward()
    t_sum.backward()


def check_all(d_mod, t_mod, d_outs, t_outs, d_ins, t_ins):
    d_outs, t_outs = flat(d_outs), flat(t_outs)
    assert len(d_outs) == len(t_outs)
    for i, (d, t) in enumerate(zip(d_outs, t_outs)):
        assert_close(d, t, what=f"output {i}", **TOL)
    backward_both(d_outs, t_outs)
    for i, (d, t) in enumerate(zip(d_ins, t_ins)):
        if t is not None:
            assert_close(d.grad, t.grad, what=f"grad of input {i}", **TOL)
    d_params = dict(d_mod.named_parameters())
    for name, p in t_mod.named_parameters():
        assert_close(d_params[name].grad, p.grad, what=f"grad of {name}", **TOL)


LAYER_CASES = [
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2}),
    ("RNN", {"bidirectional": True, "batch_first": True, "bias": False}),
    ("LSTM", {}),
    ("LSTM", {"num_layers": 2, "bidirectional": True}),
    ("LSTM", {"proj_size": 3, "num_layers": 2, "bidirectional": True, "batch_first": True}),
    ("LSTM", {"bias": False, "proj_size": 2}),
    ("GRU", {}),
    ("GRU", {"num_layers": 2, "bidirectional": True, "batch_first": True}),
    ("GRU", {"bias": False}),
]


def _states(kind, kw, batch, r, hidden=5):
    """Random initial states of torch's shapes (a tuple for LSTM), batch None: unbatched."""
    n = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    lead = (n,) if batch is None else (n, batch)
    h0 = r.standard_normal((*lead, kw.get("proj_size") or hidden))
    return [h0, r.standard_normal((*lead, hidden))] if kind == "LSTM" else [h0]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("kind,kw", LAYER_CASES)
def test_layer_matches_torch(kind, kw, with_hx, device):
    d_mod, t_mod = build(kind, 4, 5, **kw)
    d_mod.to(device)
    r = rng(1)
    seq, batch = 6, 3
    shape = (batch, seq, 4) if kw.get("batch_first") else (seq, batch, 4)
    arrays = [r.standard_normal(shape)] + (_states(kind, kw, batch, r) if with_hx else [])
    d_in, t_in = leaves(arrays, device)
    hx_d = hx_t = None
    if with_hx:
        hx_d = tuple(d_in[1:]) if kind == "LSTM" else d_in[1]
        hx_t = tuple(t_in[1:]) if kind == "LSTM" else t_in[1]
    d_out, t_out = d_mod(d_in[0], hx_d), t_mod(t_in[0], hx_t)
    assert tuple(d_out[0].shape) == tuple(t_out[0].shape)
    check_all(d_mod, t_mod, d_out, t_out, d_in, t_in)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "kind,kw",
    [("RNN", {}), ("LSTM", {"proj_size": 2, "num_layers": 2}), ("GRU", {"bidirectional": True})],
)
def test_unbatched_input(kind, kw, device):
    d_mod, t_mod = build(kind, 4, 5, **kw)
    d_mod.to(device)
    r = rng(2)
    arrays = [r.standard_normal((7, 4)), *_states(kind, kw, None, r)]
    d_in, t_in = leaves(arrays, device)
    hx_d = tuple(d_in[1:]) if kind == "LSTM" else d_in[1]
    hx_t = tuple(t_in[1:]) if kind == "LSTM" else t_in[1]
    d_out, t_out = d_mod(d_in[0], hx_d), t_mod(t_in[0], hx_t)
    check_all(d_mod, t_mod, d_out, t_out, d_in, t_in)
    # and without states
    d_out, t_out = d_mod(d_in[0]), t_mod(t_in[0])
    for d, t in zip(flat(d_out), flat(t_out)):
        assert_close(d, t, **TOL)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "kind,kw",
    [
        ("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 3}),
        ("GRU", {"bidirectional": True, "batch_first": True}),
        ("RNN", {"num_layers": 2}),
    ],
)
def test_packed_unsorted_matches_torch(kind, kw, device):
    d_mod, t_mod = build(kind, 4, 5, **kw)
    d_mod.to(device)
    r = rng(3)
    lengths = [3, 6, 1, 4]
    bf = kw.get("batch_first", False)
    shape = (4, 6, 4) if bf else (6, 4, 4)
    arrays = [r.standard_normal(shape), *_states(kind, kw, 4, r)]
    d_in, t_in = leaves(arrays, device)
    d_p = rnn_utils.pack_padded_sequence(d_in[0], lengths, batch_first=bf, enforce_sorted=False)
    t_p = torch.nn.utils.rnn.pack_padded_sequence(
        t_in[0], lengths, batch_first=bf, enforce_sorted=False
    )
    assert np.array_equal(_np(d_p.batch_sizes), _np(t_p.batch_sizes))
    assert np.array_equal(_np(d_p.sorted_indices), _np(t_p.sorted_indices))
    assert np.array_equal(_np(d_p.unsorted_indices), _np(t_p.unsorted_indices))
    hx_d = tuple(d_in[1:]) if kind == "LSTM" else d_in[1]
    hx_t = tuple(t_in[1:]) if kind == "LSTM" else t_in[1]
    (d_o, d_h), (t_o, t_h) = d_mod(d_p, hx_d), t_mod(t_p, hx_t)
    assert isinstance(d_o, rnn_utils.PackedSequence)
    assert np.array_equal(_np(d_o.batch_sizes), _np(t_o.batch_sizes))
    d_pad, d_len = rnn_utils.pad_packed_sequence(d_o, batch_first=bf, total_length=7)
    t_pad, t_len = torch.nn.utils.rnn.pad_packed_sequence(t_o, batch_first=bf, total_length=7)
    assert np.array_equal(_np(d_len), _np(t_len))
    check_all(d_mod, t_mod, [d_o.data, d_pad, d_h], [t_o.data, t_pad, t_h], d_in, t_in)


@pytest.mark.parametrize("device", DEVICES)
def test_packed_matches_padded_per_sequence(device):
    """Each packed sequence gives what running it alone gives (no padding leaks in)."""
    m = nn.LSTM(3, 4, bidirectional=True).double().to(device)
    r = rng(4)
    seqs = [dl.tensor(r.standard_normal((n, 3)), device=device) for n in (5, 2, 4)]
    out, (h, c) = m(rnn_utils.pack_sequence(seqs, enforce_sorted=False))
    for i, s in enumerate(rnn_utils.unpack_sequence(out)):
        alone, (h1, c1) = m(seqs[i])
        assert_close(s, alone, **TOL)
        assert_close(h[:, i], h1, **TOL)
        assert_close(c[:, i], c1, **TOL)


CELL_CASES = [
    ("RNNCell", {}),
    ("RNNCell", {"nonlinearity": "relu", "bias": False}),
    ("LSTMCell", {}),
    ("LSTMCell", {"bias": False}),
    ("GRUCell", {}),
    ("GRUCell", {"bias": False}),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("kind,kw", CELL_CASES)
def test_cell_matches_torch(kind, kw, batched, device):
    d_mod, t_mod = build(kind, 4, 5, **kw)
    d_mod.to(device)
    r = rng(5)
    lead = (3,) if batched else ()
    n_states = 2 if kind == "LSTMCell" else 1
    arrays = [r.standard_normal((*lead, 4))] + [
        r.standard_normal((*lead, 5)) for _ in range(n_states)
    ]
    d_in, t_in = leaves(arrays, device)
    hx_d = tuple(d_in[1:]) if n_states == 2 else d_in[1]
    hx_t = tuple(t_in[1:]) if n_states == 2 else t_in[1]
    # two steps: the second takes the first's state, so gradients flow through the state
    d_s, t_s = d_mod(d_in[0], hx_d), t_mod(t_in[0], hx_t)
    d_out, t_out = d_mod(d_in[0] * 0.5, d_s), t_mod(t_in[0] * 0.5, t_s)
    check_all(d_mod, t_mod, d_out, t_out, d_in, t_in)
    zero_d, zero_t = d_mod(d_in[0]), t_mod(t_in[0])  # hx=None: zeros
    for d, t in zip(flat(zero_d), flat(zero_t)):
        assert_close(d, t, **TOL)


def test_parameters_names_shapes_and_init():
    for kind, kw in LAYER_CASES:
        d_mod, t_mod = getattr(nn, kind)(4, 5, **kw), getattr(torch.nn, kind)(4, 5, **kw)
        d_sd, t_sd = d_mod.state_dict(), t_mod.state_dict()
        assert list(d_sd) == list(t_sd), kind
        for k in t_sd:
            assert tuple(d_sd[k].shape) == tuple(t_sd[k].shape), (kind, k)
            assert d_sd[k].dtype == dl.float32
            a = _np(d_sd[k])
            assert np.abs(a).max() <= 1 / np.sqrt(5) and a.std() > 0.1, (kind, k)
    for kind in ("RNNCell", "LSTMCell", "GRUCell"):
        d_sd, t_sd = (
            getattr(nn, kind)(4, 5).state_dict(),
            getattr(torch.nn, kind)(4, 5).state_dict(),
        )
        assert [(k, tuple(v.shape)) for k, v in d_sd.items()] == [
            (k, tuple(v.shape)) for k, v in t_sd.items()
        ]


def test_float32_default_and_repr():
    m = nn.LSTM(3, 4, 2, batch_first=True, proj_size=2)
    out, (h, c) = m(dl.randn(2, 5, 3))
    assert out.dtype == dl.float32 and tuple(out.shape) == (2, 5, 2)
    assert tuple(h.shape) == (2, 2, 2) and tuple(c.shape) == (2, 2, 4)
    assert repr(m) == repr(torch.nn.LSTM(3, 4, 2, batch_first=True, proj_size=2))
    assert repr(nn.GRUCell(3, 4, bias=False)) == repr(torch.nn.GRUCell(3, 4, bias=False))


@pytest.mark.parametrize("device", DEVICES)
def test_dropout_between_layers(device):
    d_mod, t_mod = build("GRU", 4, 5, num_layers=3, dropout=1.0)
    d_mod.to(device)
    x = rng(6).standard_normal((5, 2, 4))
    # p = 1 drops every input of layers 2 and 3: deterministic, so torch agrees in training
    d_mod.train()
    t_mod.train()
    d_out, t_out = d_mod(dl.tensor(x, device=device)), t_mod(torch.tensor(x))
    for d, t in zip(flat(d_out), flat(t_out)):
        assert_close(d, t, **TOL)
    d_mod.eval()
    t_mod.eval()
    d_eval, t_eval = d_mod(dl.tensor(x, device=device)), t_mod(torch.tensor(x))
    for d, t in zip(flat(d_eval), flat(t_eval)):
        assert_close(d, t, **TOL)
    assert not np.allclose(_np(d_out[0]), _np(d_eval[0]))
    m = nn.LSTM(4, 5, num_layers=2, dropout=0.5).to(device)
    xt = dl.tensor(x.astype(np.float32), device=device)
    m.eval()
    a, b = m(xt)[0], m(xt)[0]
    assert np.array_equal(_np(a), _np(b))
    m.train()
    assert not np.allclose(_np(m(xt)[0]), _np(a))
    with pytest.warns(UserWarning, match="num_layers"):
        nn.RNN(3, 4, dropout=0.3)


@pytest.mark.parametrize("device", DEVICES)
def test_double_backward_matches_torch(device):
    """create_graph through the fused scans (composite rebuild), against torch."""
    r = rng(7)
    for kind, kw in [("LSTM", {"proj_size": 2}), ("GRU", {"bidirectional": True}), ("RNN", {})]:
        d_mod, t_mod = build(kind, 3, 4, **kw)
        d_mod.to(device)
        x = r.standard_normal((3, 2, 3))
        dx = dl.tensor(x, device=device, requires_grad=True)
        tx = torch.tensor(x, requires_grad=True)
        res = []
        for m, xx, lib in ((d_mod, dx, dl), (t_mod, tx, torch)):
            out = m(xx)[0]
            (g,) = lib.autograd.grad((out * out).sum(), xx, create_graph=True)
            w = m.weight_hh_l0
            res.append((g, lib.autograd.grad((g * g).sum(), [xx, w])))
        assert_close(res[0][0], res[1][0], what=f"{kind} first gradient", **TOL)
        for i, (d, t) in enumerate(zip(res[0][1], res[1][1])):
            assert_close(d, t, what=f"{kind} second gradient {i}", atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize(
    "kind,kw",
    [
        ("LSTM", {"bidirectional": True, "proj_size": 2}),
        ("GRU", {"bidirectional": True}),
        ("RNN", {"nonlinearity": "relu"}),
    ],
)
@pytest.mark.parametrize("device", DEVICES)
def test_double_backward_packed_with_states(kind, kw, device):
    """Second derivatives through packed, reversed scans and the initial states."""
    d_mod, t_mod = build(kind, 3, 4, **kw)
    d_mod.to(device)
    r = rng(10)
    x = r.standard_normal((4, 3, 3))
    states = _states(kind, kw, 3, r, hidden=4)
    res = []
    for m, lib, utils in ((d_mod, dl, rnn_utils), (t_mod, torch, torch.nn.utils.rnn)):
        dev = {"device": device} if lib is dl else {}
        ins = [lib.tensor(a, requires_grad=True, **dev) for a in [x, *states]]
        packed = utils.pack_padded_sequence(ins[0], [2, 4, 1], enforce_sorted=False)
        out, hn = m(packed, tuple(ins[1:]) if kind == "LSTM" else ins[1])
        hn = hn[0] + hn[1].sum() if kind == "LSTM" else hn
        loss = (out.data**2).sum() + (hn**3).sum()
        wrt = [*ins, m.weight_hh_l0]
        gs = lib.autograd.grad(loss, wrt, create_graph=True)
        res.append((gs, lib.autograd.grad(sum((g * g).sum() for g in gs), wrt)))
    for i, (d, t) in enumerate(zip(res[0][0] + res[0][1], res[1][0] + res[1][1])):
        assert_close(d, t, what=f"{kind} gradient {i}", atol=1e-8, rtol=1e-8)


# ------------------------------------------------------------------ nn.utils.rnn


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_pad_roundtrip_matches_torch(batch_first, device):
    r = rng(8)
    shape = (3, 5, 2) if batch_first else (5, 3, 2)
    x = r.standard_normal(shape)
    dx, tx = dl.tensor(x, device=device, requires_grad=True), torch.tensor(x, requires_grad=True)
    for lengths, sort in (([5, 3, 2], True), ([2, 5, 3], False), ([3, 3, 1], False)):
        d_p = rnn_utils.pack_padded_sequence(dx, lengths, batch_first, enforce_sorted=sort)
        t_p = torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, batch_first, sort)
        assert_close(d_p.data, t_p.data, **TOL)
        assert np.array_equal(_np(d_p.batch_sizes), _np(t_p.batch_sizes))
        assert (d_p.sorted_indices is None) == (t_p.sorted_indices is None)
        if t_p.sorted_indices is not None:
            assert np.array_equal(_np(d_p.sorted_indices), _np(t_p.sorted_indices))
        kw = {"batch_first": batch_first, "padding_value": -1.5, "total_length": 6}
        d_pad, d_len = rnn_utils.pad_packed_sequence(d_p, **kw)
        t_pad, t_len = torch.nn.utils.rnn.pad_packed_sequence(t_p, **kw)
        assert_close(d_pad, t_pad, **TOL)
        assert np.array_equal(_np(d_len), _np(t_len)) and d_len.dtype == dl.int64
        backward_both([d_pad, d_p.data], [t_pad, t_p.data])
        assert_close(dx.grad, tx.grad, **TOL)


@pytest.mark.parametrize("device", DEVICES)
def test_pad_pack_sequence_lists(device):
    r = rng(9)
    arrays = [r.standard_normal((n, 3)) for n in (2, 4, 1)]
    d_in, t_in = leaves(arrays, device)
    for kw in (
        {},
        {"batch_first": True, "padding_value": 7.0},
        {"padding_side": "left"},
        {"batch_first": True, "padding_side": "left"},
    ):
        assert_close(
            rnn_utils.pad_sequence(d_in, **kw), torch.nn.utils.rnn.pad_sequence(t_in, **kw), **TOL
        )
    d_p = rnn_utils.pack_sequence(d_in, enforce_sorted=False)
    t_p = torch.nn.utils.rnn.pack_sequence(t_in, enforce_sorted=False)
    assert_close(d_p.data, t_p.data, **TOL)
    d_back, t_back = rnn_utils.unpack_sequence(d_p), torch.nn.utils.rnn.unpack_sequence(t_p)
    assert len(d_back) == len(t_back) == 3
    for d, t in zip(d_back, t_back):
        assert_close(d, t, **TOL)
    padded = rnn_utils.pad_sequence(d_in, batch_first=True)
    for d, a in zip(rnn_utils.unpad_sequence(padded, [2, 4, 1], batch_first=True), arrays):
        assert_close(d, a, **TOL)
    backward_both([*d_back, padded], [*t_back, torch.nn.utils.rnn.pad_sequence(t_in, True)])
    for d, t in zip(d_in, t_in):
        assert_close(d.grad, t.grad, **TOL)


def test_packed_sequence_api():
    p = rnn_utils.pack_sequence([dl.ones(3, 2), dl.ones(1, 2)])
    data, batch_sizes, sorted_indices, _ = p  # a 4-tuple, as torch's
    assert batch_sizes.tolist() == [2, 1, 1] and sorted_indices is None
    assert p.double().data.dtype == dl.float64 and p.to(dl.float64).data.dtype == dl.float64
    assert not p.is_cuda
    q = rnn_utils.PackedSequence(data, batch_sizes, dl.tensor([1, 0]))
    assert q.unsorted_indices.tolist() == [1, 0]


# ------------------------------------------------------------------ errors


def test_bad_input_errors_name_shapes():
    lstm = nn.LSTM(4, 5, num_layers=2)
    with pytest.raises(RuntimeError, match=r"Expected 4, got 3.*\(6, 2, 3\)"):
        lstm(dl.randn(6, 2, 3))
    with pytest.raises(ValueError, match=r"2D or 3D, got 4D.*\(1, 6, 2, 4\)"):
        lstm(dl.randn(1, 6, 2, 4))
    x = dl.randn(6, 2, 4)
    with pytest.raises(RuntimeError, match=r"h_0.*\(2, 2, 5\).*got \(1, 2, 5\)"):
        lstm(x, (dl.zeros(1, 2, 5), dl.zeros(2, 2, 5)))
    with pytest.raises(RuntimeError, match=r"c_0.*\(2, 2, 5\).*got \(2, 3, 5\)"):
        lstm(x, (dl.zeros(2, 2, 5), dl.zeros(2, 3, 5)))
    with pytest.raises(TypeError, match="tuple"):
        lstm(x, dl.zeros(2, 2, 5))
    gru = nn.GRU(4, 5)
    with pytest.raises(RuntimeError, match=r"unbatched 2-D input.*3-D"):
        gru(dl.randn(6, 4), dl.zeros(1, 1, 5))
    with pytest.raises(RuntimeError, match=r"batched 3-D input.*2-D"):
        gru(x, dl.zeros(1, 5))
    with pytest.raises(TypeError, match=r"float64.*float32"):
        gru(x.double())
    with pytest.raises(RuntimeError, match=r"input_size: got 3 .*\(2, 3\).*expected 4"):
        nn.GRUCell(4, 5)(dl.randn(2, 3))
    with pytest.raises(RuntimeError, match=r"hx of shape \(2, 5\).*got \(3, 5\)"):
        nn.RNNCell(4, 5)(dl.randn(2, 4), dl.zeros(3, 5))
    with pytest.raises(ValueError, match="1D or 2D, got 3D"):
        nn.LSTMCell(4, 5)(dl.randn(1, 2, 4))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match=r"proj_size.*only supported for LSTM"):
        nn.RNNBase("GRU", 3, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size has to be smaller"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match=r"range \[0, 1\]"):
        nn.LSTM(3, 4, 2, dropout=1.5)
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'"):
        nn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="hidden_size"):
        nn.LSTM(3, 0)


def test_rnn_utils_errors():
    x = dl.randn(5, 3, 2)
    with pytest.raises(ValueError, match="not sorted in decreasing order"):
        rnn_utils.pack_padded_sequence(x, [2, 5, 3])
    with pytest.raises(ValueError, match=r"3 lengths .*batch of 3|got 2 lengths"):
        rnn_utils.pack_padded_sequence(x, [5, 3])
    with pytest.raises(ValueError, match="greater than 0"):
        rnn_utils.pack_padded_sequence(x, [5, 3, 0])
    with pytest.raises(ValueError, match=r"length 6 does not fit.*\(5, 3, 2\)"):
        rnn_utils.pack_padded_sequence(x, [6, 3, 1])
    p = rnn_utils.pack_padded_sequence(x, [5, 3, 1])
    with pytest.raises(ValueError, match="total_length=4 is shorter"):
        rnn_utils.pad_packed_sequence(p, total_length=4)
    with pytest.raises(ValueError, match=r"sequence 1 is \(2, 3\)"):
        rnn_utils.pad_sequence([dl.zeros(2, 2), dl.zeros(2, 3)])


@pytest.mark.parametrize("device", DEVICES)
def test_lstm_and_gru_outputs_may_change_in_place_and_lengths_may_be_floats(device):
    """As torch: backward does not read an LSTM's or GRU's returned output; packing takes
    float lengths; a layer (not a cell) refuses input_size 0."""
    for module in (nn.GRU(3, 4, 2), nn.LSTM(3, 4, bidirectional=True), nn.GRUCell(3, 4)):
        module.to(device)
        x = (
            dl.randn(5, 2, 3, device=device, requires_grad=True)
            if module.__class__.__name__ != "GRUCell"
            else dl.randn(2, 3, device=device, requires_grad=True)
        )
        out = module(x)
        out = out[0] if isinstance(out, tuple) else out
        out.mul_(0.5)
        out.sum().backward()
        assert x.grad is not None and tuple(x.grad.shape) == tuple(x.shape)
    packed = rnn_utils.pack_padded_sequence(dl.randn(3, 2, 4, device=device), [3.0, 2.0])
    assert packed.batch_sizes.tolist() == [2, 2, 1]
    with pytest.raises(ValueError, match="input_size"):
        nn.LSTM(0, 3)
