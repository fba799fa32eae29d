"""``nn.utils.rnn``: packed and padded batches of variable-length sequences.

A :class:`PackedSequence` holds the time steps of a batch one after another: the rows of
step ``t`` are the ``batch_sizes[t]`` sequences still running at ``t``, sorted by
decreasing length (``sorted_indices`` maps sorted positions to the caller's order,
``unsorted_indices`` back). The recurrent layers run on it without computing the padding.

Each conversion here is one differentiable gather (``index_select``) with an index built
on the host, so gradients flow back into the padded or packed data.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from typing import Any

import numpy as np

from darklib.backend import to_numpy
from darklib.creation import full, tensor
from darklib.errors import InvalidType, InvalidValue
from darklib.ops.indexing import index_select
from darklib.ops.shape import cat
from darklib.tensor import Tensor

__all__ = [
    "PackedSequence",
    "invert_permutation",
    "pack_padded_sequence",
    "pack_sequence",
    "pad_packed_sequence",
    "pad_sequence",
    "unpack_sequence",
    "unpad_sequence",
]

_Fields = namedtuple(
    "PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"]
)


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of a permutation given as an int64 index tensor (None stays None)."""
    if permutation is None:
        return None
    perm = to_numpy(permutation.array).astype(np.int64)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size, dtype=np.int64)
    return tensor(inv, device=permutation.device)


class PackedSequence(_Fields):
    """A batch of variable-length sequences, packed time step after time step.

    Build it with :func:`pack_padded_sequence` or :func:`pack_sequence` rather than by
    hand; the recurrent layers take it as input and return their output as one.

    Attributes:
        data: (sum(batch_sizes), *) the rows of all time steps, one after another.
        batch_sizes: (T,) int64 CPU tensor: how many sequences run at each step
            (non-increasing).
        sorted_indices: (B,) or None: the caller's index of each sorted sequence.
        unsorted_indices: (B,) or None: the inverse permutation.
    """

    __slots__ = ()

    def __new__(
        cls,
        data: Tensor,
        batch_sizes: Tensor | None = None,
        sorted_indices: Tensor | None = None,
        unsorted_indices: Tensor | None = None,
    ) -> PackedSequence:
        if not isinstance(data, Tensor):
            raise InvalidType(f"PackedSequence: data must be a Tensor, got {type(data).__name__}")
        if batch_sizes is None:
            raise InvalidValue(
                "PackedSequence: batch_sizes is required; build packed sequences with "
                "pack_padded_sequence or pack_sequence"
            )
        if not isinstance(batch_sizes, Tensor):
            batch_sizes = tensor(np.asarray(batch_sizes, np.int64), device="cpu")
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def _with(self, fn: Any, indices: bool = True) -> PackedSequence:
        move = fn if indices else (lambda t: t)
        return type(self)(
            fn(self.data),
            self.batch_sizes,
            None if self.sorted_indices is None else move(self.sorted_indices),
            None if self.unsorted_indices is None else move(self.unsorted_indices),
        )

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """``data.to(...)``; the indices follow data's device, batch_sizes stays on the CPU."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        return self._with(lambda t: t.to(data.device) if t is not self.data else data)

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def cuda(self, device: Any = None) -> PackedSequence:
        return self.to("cuda" if device is None else device)

    def double(self) -> PackedSequence:
        return self._with(lambda t: t.double(), indices=False)

    def float(self) -> PackedSequence:
        return self._with(lambda t: t.float(), indices=False)

    def half(self) -> PackedSequence:
        return self._with(lambda t: t.half(), indices=False)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda


def _lengths_array(lengths: Any, batch: int, op: str) -> np.ndarray:
    if isinstance(lengths, Tensor):
        arr = to_numpy(lengths.array)
    else:
        arr = np.asarray(lengths)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iuf"):
        raise InvalidValue(
            f"{op}: lengths must be a 1-D sequence of ints, got shape {arr.shape} of {arr.dtype}"
        )  # (floats are truncated to ints, as torch)
    arr = arr.astype(np.int64)
    if arr.size != batch:
        raise InvalidValue(
            f"{op}: got {arr.size} lengths for a batch of {batch} sequences; give one "
            "length per sequence"
        )
    if arr.size and arr.min() <= 0:
        raise InvalidValue(f"{op}: every length must be greater than 0, got lengths {arr.tolist()}")
    return arr


def _batch_sizes(lengths_sorted: np.ndarray) -> np.ndarray:
    """Sequences still running at each step, for lengths sorted in decreasing order."""
    steps = int(lengths_sorted[0]) if lengths_sorted.size else 0
    return (lengths_sorted[None, :] > np.arange(steps)[:, None]).sum(axis=1).astype(np.int64)


def pack_padded_sequence(
    input: Tensor, lengths: Any, batch_first: bool = False, enforce_sorted: bool = True
) -> PackedSequence:
    """Pack a padded batch of variable-length sequences.

    Args:
        input: (T, B, *) padded sequences, or (B, T, *) with ``batch_first``.
        lengths: the length of each sequence (a list or a 1-D int tensor), each in [1, T].
        batch_first: whether the batch is dimension 0 of ``input``.
        enforce_sorted: require lengths in decreasing order; with False any order is
            accepted and sorted here (``sorted_indices`` records the order).

    Returns:
        a :class:`PackedSequence`.
    """
    op = "pack_padded_sequence"
    if not isinstance(input, Tensor):
        raise InvalidType(f"{op}: expected input to be a Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise InvalidValue(
            f"{op}: expected a padded input of shape (T, B, *) or (B, T, *), got "
            f"{tuple(input.shape)}"
        )
    tdim, bdim = (1, 0) if batch_first else (0, 1)
    steps, batch = int(input.shape[tdim]), int(input.shape[bdim])
    lens = _lengths_array(lengths, batch, op)
    if enforce_sorted:
        if np.any(lens[1:] > lens[:-1]):
            raise InvalidValue(
                f"{op}: lengths {lens.tolist()} are not sorted in decreasing order, which "
                "enforce_sorted=True requires; pass enforce_sorted=False to have them sorted"
            )
        order = np.arange(batch, dtype=np.int64)
        sorted_indices = None
    else:
        order = np.argsort(-lens, kind="stable").astype(np.int64)
        sorted_indices = tensor(order, device=input.device)
    lens_sorted = lens[order]
    if lens_sorted.size and lens_sorted[0] > steps:
        raise InvalidValue(
            f"{op}: a sequence of length {int(lens_sorted[0])} does not fit in input "
            f"{tuple(input.shape)} with {steps} time steps"
        )
    sizes = _batch_sizes(lens_sorted)
    # flat row of (step t, sorted sequence j) in input folded to (T*B, *) or (B*T, *)
    idx = [
        (order[:n] * steps + t) if batch_first else (t * batch + order[:n])
        for t, n in enumerate(sizes)
    ]
    flat = input.reshape(steps * batch, *input.shape[2:])
    rows = np.concatenate(idx) if idx else np.zeros(0, np.int64)
    data = index_select(flat, 0, tensor(rows, device=input.device))
    return PackedSequence(data, tensor(sizes, device="cpu"), sorted_indices, None)


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Undo :func:`pack_padded_sequence`: the padded batch and each sequence's length.

    Args:
        sequence: a :class:`PackedSequence`.
        batch_first: return (B, T, *) instead of (T, B, *).
        padding_value: the value of the padding.
        total_length: pad to this many steps (at least the longest sequence), so that
            the output has the same length as a padded input had.

    Returns:
        (padded, lengths): lengths an int64 CPU tensor in the caller's batch order.
    """
    op = "pad_packed_sequence"
    if not isinstance(sequence, PackedSequence):
        raise InvalidType(
            f"{op}: expected a PackedSequence, got {type(sequence).__name__}; build one with "
            "pack_padded_sequence or pack_sequence"
        )
    data = sequence.data
    sizes = to_numpy(sequence.batch_sizes.array).astype(np.int64)
    steps = int(sizes.size)
    batch = int(sizes[0]) if steps else 0
    if total_length is not None:
        if int(total_length) < steps:
            raise InvalidValue(
                f"{op}: total_length={total_length} is shorter than the longest sequence "
                f"({steps} steps); pass total_length >= {steps}"
            )
        steps_out = int(total_length)
    else:
        steps_out = steps
    unsorted = (
        np.arange(batch, dtype=np.int64)
        if sequence.unsorted_indices is None
        else to_numpy(sequence.unsorted_indices.array).astype(np.int64)
    )
    n = int(data.shape[0])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    # row of data (or n, the padding row) for each (step, sorted sequence)
    src = np.full((steps_out, batch), n, np.int64)
    for t in range(steps):
        src[t, : sizes[t]] = starts[t] + np.arange(sizes[t])
    src = src[:, unsorted]  # columns in the caller's order
    if batch_first:
        src = src.T
    pad = full((1, *data.shape[1:]), padding_value, dtype=data.dtype, device=data.device)
    rows = tensor(np.ascontiguousarray(src).reshape(-1), device=data.device)
    padded = index_select(cat([data, pad]), 0, rows).reshape(*src.shape, *data.shape[1:])
    lens_sorted = (sizes[None, :] > np.arange(batch)[:, None]).sum(axis=1).astype(np.int64)
    return padded, tensor(lens_sorted[unsorted], device="cpu")  # (on the CPU, as torch's)


def pad_sequence(
    sequences: Sequence[Tensor],
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:
    """Stack variable-length sequences (each (L_i, *)) into one padded tensor.

    Args:
        sequences: tensors sharing their trailing shape and device; the result has the
            first one's dtype (the others are cast to it, as torch's).
        batch_first: return (B, T, *) instead of (T, B, *), T the longest length.
        padding_value: the value of the padding.
        padding_side: ``'right'`` (default) or ``'left'``: where the padding goes.
    """
    op = "pad_sequence"
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    seqs = list(sequences)
    if not seqs:
        raise InvalidValue(f"{op}: received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise InvalidValue(f"{op}: padding_side must be 'left' or 'right', got {padding_side!r}")
    for i, s in enumerate(seqs):
        if not isinstance(s, Tensor):
            raise InvalidType(f"{op}: sequence {i} is a {type(s).__name__}, not a Tensor")
        if s.ndim == 0 or tuple(s.shape[1:]) != tuple(seqs[0].shape[1:]):
            raise InvalidValue(
                f"{op}: sequences must be (L_i, *) with one trailing shape; sequence 0 is "
                f"{tuple(seqs[0].shape)}, sequence {i} is {tuple(s.shape)}"
            )
    first = seqs[0]
    # the result has the first sequence's dtype, the others cast to it (as torch's, which
    # copies them into a tensor of that dtype: no promotion)
    seqs = [s if s.dtype == first.dtype else s.to(first.dtype) for s in seqs]
    lens = np.array([int(s.shape[0]) for s in seqs], np.int64)
    steps, batch = int(lens.max()), len(seqs)
    n = int(lens.sum())
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    src = np.full((steps, batch), n, np.int64)
    for j, (s0, length) in enumerate(zip(starts, lens)):
        at = 0 if padding_side == "right" else steps - length
        src[at : at + length, j] = s0 + np.arange(length)
    if batch_first:
        src = src.T
    pad = full((1, *first.shape[1:]), padding_value, dtype=first.dtype, device=first.device)
    rows = tensor(np.ascontiguousarray(src).reshape(-1), device=first.device)
    return index_select(cat([*seqs, pad]), 0, rows).reshape(*src.shape, *first.shape[1:])


def unpad_sequence(
    padded_sequences: Tensor, lengths: Any, batch_first: bool = False
) -> list[Tensor]:
    """Split a padded batch back into its sequences: a list of (L_i, *) tensors."""
    x = padded_sequences
    if not isinstance(x, Tensor) or x.ndim < 2:
        raise InvalidValue(
            "unpad_sequence: expected a padded (T, B, *) or (B, T, *) tensor, got "
            f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}"
        )
    if not batch_first:
        x = x.transpose(0, 1)
    lens = _lengths_array(lengths, int(x.shape[0]), "unpad_sequence")
    return [x[i, : int(n)] for i, n in enumerate(lens)]


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of variable-length sequences (each (L_i, *)); with ``enforce_sorted``
    they must come longest first."""
    seqs = list(sequences)
    lengths = [int(s.shape[0]) if isinstance(s, Tensor) and s.ndim else 0 for s in seqs]
    return pack_padded_sequence(pad_sequence(seqs), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """Undo :func:`pack_sequence`: the list of sequences, in the caller's order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
