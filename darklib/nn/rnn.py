"""Recurrent layers: RNN, LSTM, GRU and their single-step cells.

Parameters, their names, shapes and initialisation are torch's, so a torch state dict
loads as it is. Each layer and direction computes its input projection for all time
steps in one GEMM (``linear``), then runs its time loop as one fused Function
(:mod:`darklib.ops.recurrent`): per step a GEMM with ``W_hh`` and the gate math. Every
input runs packed internally (a padded batch is a packed one with equal batch sizes).
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

from darklib.amp.autocast_mode import autocasts
from darklib.backend import to_numpy
from darklib.creation import zeros
from darklib.errors import InvalidType, InvalidValue
from darklib.nn import init
from darklib.nn._utils import check_tensor, new_param, positive_int, shape_str
from darklib.nn.module import Module
from darklib.nn.utils.rnn import PackedSequence
from darklib.ops.dropout import dropout as _dropout
from darklib.ops.indexing import index_select
from darklib.ops.linalg import linear
from darklib.ops.recurrent import GATES, scan
from darklib.ops.shape import cat, stack
from darklib.tensor import Tensor

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell", "RNNCellBase"]


def _check_like(layer: Any, what: str, t: Tensor, ref: Tensor) -> None:
    """``t`` (an input or state) must share the parameters' dtype and device."""
    if t.array.dtype != ref.array.dtype:
        raise InvalidType(
            f"{layer._get_name()}: {what} is {t.dtype} but the parameters are {ref.dtype}; "
            f"convert it with .to({ref.dtype}) (or the module with .to({t.dtype}))"
        )
    if type(t.array) is not type(ref.array):
        raise RuntimeError(
            f"{layer._get_name()}: {what} is on {t.device} but the parameters are on "
            f"{ref.device}; move it with .to()"
        )


class RNNBase(Module):
    """The shared machinery of :class:`RNN`, :class:`LSTM` and :class:`GRU`.

    ``mode`` is one of ``'RNN_TANH'``, ``'RNN_RELU'``, ``'LSTM'``, ``'GRU'`` (torch's).
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        name = {"RNN_TANH": "RNN", "RNN_RELU": "RNN"}.get(mode, mode)
        if mode.lower() not in GATES:
            raise InvalidValue(f"{name}: unknown mode {mode!r}")
        positive_int(input_size, "input_size", name)  # (torch's cells allow 0, its layers not)
        positive_int(hidden_size, "hidden_size", name)
        positive_int(num_layers, "num_layers", name)
        if isinstance(dropout, bool) or not isinstance(dropout, int | float):
            raise InvalidValue(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        if not 0 <= dropout <= 1:
            raise InvalidValue(
                f"{name}: dropout should be a number in range [0, 1] representing the "
                f"probability of an element being zeroed, got {dropout}"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"{name}: dropout option adds dropout after all but last recurrent layer, so "
                f"non-zero dropout expects num_layers greater than 1, but got dropout={dropout} "
                f"and num_layers={num_layers}",
                stacklevel=2,
            )
        positive_int(proj_size, "proj_size", name, allow_zero=True)
        if proj_size and mode != "LSTM":
            raise InvalidValue(f"{name}: proj_size argument is only supported for LSTM")
        if proj_size >= hidden_size:
            raise InvalidValue(
                f"{name}: proj_size has to be smaller than hidden_size, got proj_size="
                f"{proj_size} and hidden_size={hidden_size}"
            )
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = proj_size
        gate_size = GATES[mode.lower()] * hidden_size
        real_hidden = proj_size or hidden_size
        dirs = 2 if bidirectional else 1
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else real_hidden * dirs
            for d in range(dirs):
                sfx = f"_l{layer}{'_reverse' if d else ''}"
                shapes = [
                    (f"weight_ih{sfx}", (gate_size, layer_in)),
                    (f"weight_hh{sfx}", (gate_size, real_hidden)),
                ]
                if bias:
                    shapes += [(f"bias_ih{sfx}", (gate_size,)), (f"bias_hh{sfx}", (gate_size,))]
                if proj_size:
                    shapes.append((f"weight_hr{sfx}", (proj_size, hidden_size)))
                for pname, shape in shapes:
                    setattr(self, pname, new_param(shape, device, dtype))
                    self._flat_weights_names.append(pname)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def flatten_parameters(self) -> None:
        """A no-op kept for torch compatibility (cuDNN's weight buffer)."""

    @property
    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """The parameters per layer and direction, in torch's order."""
        per = len(self._flat_weights_names) // (self.num_layers * (2 if self.bidirectional else 1))
        w = self._flat_weights
        return [w[i : i + per] for i in range(0, len(w), per)]

    def _layer_params(self, layer: int, d: int) -> tuple:
        sfx = f"_l{layer}{'_reverse' if d else ''}"
        b_ih = getattr(self, f"bias_ih{sfx}") if self.bias else None
        b_hh = getattr(self, f"bias_hh{sfx}") if self.bias else None
        w_hr = getattr(self, f"weight_hr{sfx}") if self.proj_size else None
        return getattr(self, f"weight_ih{sfx}"), getattr(self, f"weight_hh{sfx}"), b_ih, b_hh, w_hr

    # ---------------------------------------------------------------- checks

    def _state(self, hx: Any, which: str, shape: tuple, batched: bool, ref: Tensor) -> Tensor:
        name = self._get_name()
        if not isinstance(hx, Tensor):
            raise InvalidType(f"{name}: expected {which} to be a Tensor, got {type(hx).__name__}")
        if batched and hx.ndim != 3:
            raise RuntimeError(
                f"{name}: for batched 3-D input, {which} should also be 3-D but got "
                f"{hx.ndim}-D tensor of shape {shape_str(hx)}"
            )
        if not batched:
            if hx.ndim != 2:
                raise RuntimeError(
                    f"{name}: for unbatched 2-D input, {which} should also be 2-D but got "
                    f"{hx.ndim}-D tensor of shape {shape_str(hx)}"
                )
            hx = hx.unsqueeze(1)
        if tuple(hx.shape) != shape:
            want = shape if batched else (shape[0], shape[2])
            got = shape_str(hx) if batched else str((hx.shape[0], hx.shape[2]))
            raise RuntimeError(
                f"{name}: expected {which} of shape {want} (num_layers * num_directions, "
                f"{'batch, ' if batched else ''}hidden), got {got}"
            )
        _check_like(self, which, hx, ref)
        return hx

    # ---------------------------------------------------------------- forward

    @autocasts("rnn")
    def forward(self, input: Any, hx: Any = None) -> tuple[Any, Any]:
        name = self._get_name()
        lstm = self.mode == "LSTM"
        ref = self.weight_ih_l0
        sorted_idx = unsorted_idx = None
        if isinstance(input, PackedSequence):
            data, sizes_t, sorted_idx, unsorted_idx = input
            check_tensor(self, data)
            sizes = [int(v) for v in to_numpy(sizes_t.array).reshape(-1)]
            if any(a < b for a, b in itertools.pairwise(sizes)) or (sizes and sizes[-1] <= 0):
                raise InvalidValue(
                    f"{name}: the PackedSequence's batch_sizes {sizes} must be positive and "
                    "non-increasing; build it with pack_padded_sequence or pack_sequence"
                )
            if data.ndim != 2 or data.shape[0] != sum(sizes):
                raise RuntimeError(
                    f"{name}: a PackedSequence's data must be (sum(batch_sizes)="
                    f"{sum(sizes)}, input_size), got {shape_str(data)}"
                )
            batch = sizes[0] if sizes else 0
            steps, batched = len(sizes), True
        else:
            x = check_tensor(self, input)
            if x.ndim not in (2, 3):
                raise InvalidValue(
                    f"{name}: Expected input to be 2D or 3D, got {x.ndim}D instead (shape "
                    f"{shape_str(x)}); use (seq_len, batch, input_size), (batch, seq_len, "
                    "input_size) with batch_first=True, or (seq_len, input_size)"
                )
            batched = x.ndim == 3
            if not batched:
                x = x.unsqueeze(1)
            elif self.batch_first:
                x = x.transpose(0, 1)
            steps, batch = int(x.shape[0]), int(x.shape[1])
            data = x.reshape(steps * batch, x.shape[2])
            sizes = [batch] * steps
        if data.shape[-1] != self.input_size:
            raise RuntimeError(
                f"{name}: input.size(-1) must be equal to input_size. Expected "
                f"{self.input_size}, got {data.shape[-1]} (input of shape "
                f"{shape_str(input if isinstance(input, Tensor) else data)})"
            )
        if steps == 0:
            raise InvalidValue(f"{name}: the input sequence is empty (0 time steps)")
        _check_like(self, "input", data, ref)
        dirs = 2 if self.bidirectional else 1
        n_state = self.num_layers * dirs
        out_size = self.proj_size or self.hidden_size
        h_shape = (n_state, batch, out_size)
        c_shape = (n_state, batch, self.hidden_size)
        if hx is None:
            h0 = zeros(*h_shape, dtype=ref.dtype, device=ref.device)
            c0 = zeros(*c_shape, dtype=ref.dtype, device=ref.device) if lstm else None
        elif lstm:
            if not isinstance(hx, tuple | list) or len(hx) != 2:
                raise InvalidType(
                    f"{name}: hx must be a tuple (h_0, c_0) of two tensors, got {type(hx).__name__}"
                )
            h0 = self._state(hx[0], "hx[0] (h_0)", h_shape, batched, ref)
            c0 = self._state(hx[1], "hx[1] (c_0)", c_shape, batched, ref)
        else:
            if isinstance(hx, tuple | list):
                raise InvalidType(f"{name}: hx must be a Tensor (h_0), got a {type(hx).__name__}")
            h0 = self._state(hx, "hx (h_0)", h_shape, batched, ref)
            c0 = None
        if sorted_idx is not None and hx is not None:
            h0 = index_select(h0, 1, sorted_idx)
            c0 = index_select(c0, 1, sorted_idx) if lstm else None

        mode = self.mode.lower()
        n = int(data.shape[0])
        layer_in = data
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._layer_params(layer, d)
                if b_ih is not None and mode != "gru":
                    b_in, b_rec = b_ih + b_hh, None  # both add to the gates: fold them
                else:
                    b_in, b_rec = b_ih, b_hh
                k = layer * dirs + d
                xproj = linear(layer_in, w_ih, b_in)
                res = scan(
                    mode, xproj, h0[k], c0[k] if lstm else None, w_hh, b_rec, w_hr, sizes, d == 1
                )
                outs.append(res[:n, :out_size] if lstm else res[:n])
                h_n.append(res[n:, :out_size] if lstm else res[n:])
                if lstm:
                    c_n.append(res[n:, out_size:])
            layer_in = outs[0] if dirs == 1 else cat(outs, 1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = _dropout(layer_in, self.dropout, True)
        h_out = stack(h_n)
        c_out = stack(c_n) if lstm else None
        if unsorted_idx is not None:
            h_out = index_select(h_out, 1, unsorted_idx)
            c_out = index_select(c_out, 1, unsorted_idx) if lstm else None
        if isinstance(input, PackedSequence):
            output: Any = PackedSequence(layer_in, input.batch_sizes, sorted_idx, unsorted_idx)
        else:
            output = layer_in.reshape(steps, batch, layer_in.shape[1])
            if not batched:
                output = output.squeeze(1)
                h_out = h_out.squeeze(1)
                c_out = c_out.squeeze(1) if lstm else None
            elif self.batch_first:
                output = output.transpose(0, 1)
        return output, ((h_out, c_out) if lstm else h_out)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """A multi-layer Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``
    (or ReLU).

    Args:
        input_size: features of each input step.
        hidden_size: features of the hidden state.
        num_layers: stacked recurrent layers. Default: 1.
        nonlinearity: ``'tanh'`` (default) or ``'relu'``.
        bias: learn ``b_ih`` and ``b_hh``. Default: True.
        batch_first: inputs and outputs are (batch, seq, feature). Default: False.
        dropout: dropout probability on the outputs of each layer but the last (in
            training). Default: 0.
        bidirectional: also run each layer backwards in time. Default: False.

    Shape:
        - input: (L, N, H_in), (N, L, H_in) with batch_first, (L, H_in) unbatched, or a
          :class:`~darklib.nn.utils.rnn.PackedSequence`.
        - hx: (D * num_layers, N, H_out) or (D * num_layers, H_out); zeros if None.
        - output: (L, N, D * H_out) (as the input's layout); h_n like hx.

    Attributes:
        weight_ih_l[k], weight_hh_l[k], bias_ih_l[k], bias_hh_l[k] (``_reverse`` for the
        backward direction), initialised U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).

    Example::

        >>> rnn = nn.RNN(10, 20, 2)
        >>> output, h_n = rnn(dl.randn(5, 3, 10))
        >>> output.shape, h_n.shape
        ((5, 3, 20), (2, 3, 20))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise InvalidValue(
                f"RNN: Unknown nonlinearity {nonlinearity!r}. Select from 'tanh' or 'relu'."
            )
        self.nonlinearity = nonlinearity
        super().__init__(
            "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
        )


class LSTM(RNNBase):
    """A multi-layer long short-term memory network.

    Per step: ``i, f, g, o = sigmoid, sigmoid, tanh, sigmoid`` of ``x W_ih^T + b_ih +
    h W_hh^T + b_hh`` (chunks in that order), ``c' = f * c + i * g``, ``h' = o * tanh(c')``,
    and with ``proj_size > 0`` ``h' = (o * tanh(c')) W_hr^T``.

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional:
            as :class:`RNN`.
        proj_size: if > 0, project the hidden state to this size. Default: 0.

    Shape:
        - input: as :class:`RNN`.
        - hx: a tuple (h_0, c_0): (D * num_layers, N, H_out) and (D * num_layers, N,
          hidden_size) (without N unbatched), H_out = proj_size or hidden_size.
        - output: (L, N, D * H_out); (h_n, c_n) like hx.

    Example::

        >>> lstm = nn.LSTM(10, 20, 2, batch_first=True)
        >>> output, (h_n, c_n) = lstm(dl.randn(3, 5, 10))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
        )


class GRU(RNNBase):
    """A multi-layer gated recurrent unit network.

    Per step: ``r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)``, ``z`` likewise,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``.

    Args and shapes: as :class:`RNN` (no nonlinearity).

    Example::

        >>> gru = nn.GRU(10, 20, 2)
        >>> output, h_n = gru(dl.randn(5, 3, 10))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
        )


# ------------------------------------------------------------------ cells


class RNNCellBase(Module):
    """The shared machinery of the single-step cells."""

    _mode = "rnn_tanh"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        num_chunks: int,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        positive_int(input_size, "input_size", name, allow_zero=True)
        positive_int(hidden_size, "hidden_size", name)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bool(bias)
        self.weight_ih = new_param((num_chunks * hidden_size, input_size), device, dtype)
        self.weight_hh = new_param((num_chunks * hidden_size, hidden_size), device, dtype)
        if bias:
            self.bias_ih = new_param((num_chunks * hidden_size,), device, dtype)
            self.bias_hh = new_param((num_chunks * hidden_size,), device, dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _input(self, input: Any) -> tuple[Tensor, bool]:
        name = self._get_name()
        x = check_tensor(self, input)
        if x.ndim not in (1, 2):
            raise InvalidValue(
                f"{name}: Expected input to be 1D or 2D, got {x.ndim}D instead (shape "
                f"{shape_str(x)}); use (batch, input_size) or (input_size,)"
            )
        if x.shape[-1] != self.input_size:
            raise RuntimeError(
                f"{name}: input has inconsistent input_size: got {x.shape[-1]} (input of "
                f"shape {shape_str(x)}), expected {self.input_size}"
            )
        _check_like(self, "input", x, self.weight_ih)
        batched = x.ndim == 2
        return (x if batched else x.unsqueeze(0)), batched

    def _hidden(self, h: Any, which: str, x: Tensor, batched: bool) -> Tensor:
        name = self._get_name()
        if h is None:
            return zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
        if not isinstance(h, Tensor):
            raise InvalidType(f"{name}: expected {which} to be a Tensor, got {type(h).__name__}")
        want = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        if tuple(h.shape) != tuple(want):
            raise RuntimeError(
                f"{name}: expected {which} of shape {want} for input of shape "
                f"{(x.shape[0], x.shape[1]) if batched else (x.shape[1],)}, got {shape_str(h)}"
            )
        _check_like(self, which, h, self.weight_ih)
        return h if batched else h.unsqueeze(0)

    def _step(self, x: Tensor, h: Tensor, c: Tensor | None) -> Tensor:
        """The cell's scan over one step: (2B, H [+ H]), rows :B the new state."""
        mode = self._mode
        b_ih, b_hh = self.bias_ih, self.bias_hh
        if b_ih is not None and mode != "gru":
            b_in, b_rec = b_ih + b_hh, None
        else:
            b_in, b_rec = b_ih, b_hh
        xproj = linear(x, self.weight_ih, b_in)
        return scan(mode, xproj, h, c, self.weight_hh, b_rec, None, [x.shape[0]])

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        nl = getattr(self, "nonlinearity", "tanh")
        return s if nl == "tanh" else f"{s}, nonlinearity={nl}"  # (unquoted, as torch's)


class RNNCell(RNNCellBase):
    """One step of an Elman RNN: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    Args:
        input_size, hidden_size: features of the input and of the hidden state.
        bias: learn ``bias_ih`` and ``bias_hh``. Default: True.
        nonlinearity: ``'tanh'`` (default) or ``'relu'``.

    Shape: input (N, H_in) or (H_in,); hx (N, H) or (H,), zeros if None; output like hx.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise InvalidValue(
                f"RNNCell: Unknown nonlinearity {nonlinearity!r}. Select from 'tanh' or 'relu'."
            )
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity
        self._mode = "rnn_" + nonlinearity

    @autocasts("rnn_cell")
    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, batched = self._input(input)
        h = self._hidden(hx, "hx", x, batched)
        out = self._step(x, h, None)[: x.shape[0]]
        return out if batched else out.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o as in :class:`LSTM`).

    Shape: input (N, H_in) or (H_in,); hx a tuple (h, c) of (N, H) or (H,), zeros if
    None; returns the tuple (h', c').
    """

    _mode = "lstm"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    @autocasts("rnn_cell")
    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Tensor]:
        x, batched = self._input(input)
        if hx is not None and (not isinstance(hx, tuple | list) or len(hx) != 2):
            raise InvalidType(
                f"LSTMCell: hx must be a tuple (h, c) of two tensors, got {type(hx).__name__}"
            )
        h0, c0 = (None, None) if hx is None else hx
        h = self._hidden(h0, "hx[0] (h)", x, batched)
        c = self._hidden(c0, "hx[1] (c)", x, batched)
        b, hid = x.shape[0], self.hidden_size
        out = self._step(x, h, c)
        h1, c1 = out[:b, :hid], out[:b, hid:]
        return (h1, c1) if batched else (h1.squeeze(0), c1.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n as in :class:`GRU`).

    Shape: input (N, H_in) or (H_in,); hx (N, H) or (H,), zeros if None; output like hx.
    """

    _mode = "gru"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    @autocasts("rnn_cell")
    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, batched = self._input(input)
        h = self._hidden(hx, "hx", x, batched)
        out = self._step(x, h, None)[: x.shape[0]]
        return out if batched else out.squeeze(0)
