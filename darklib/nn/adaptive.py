"""``nn.AdaptiveLogSoftmaxWithLoss``: the adaptive softmax of Grave et al. (2017) for
very many classes, as torch's.

Classes are split by frequency at ``cutoffs``: the head predicts the ``cutoffs[0]`` most
frequent classes and one entry per tail cluster; cluster ``i`` (classes ``cutoffs[i]`` to
``cutoffs[i+1] - 1``) has its own small projection (in_features -> in_features /
div_value**(i+1) -> cluster size), so rare classes cost little. The log-probability of a
tail class is the head's log-probability of its cluster plus its log-probability within
the cluster.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from typing import Any

import numpy as np

from darklib.backend import to_numpy
from darklib.creation import tensor, zeros
from darklib.errors import InvalidValue
from darklib.grad_mode import no_grad
from darklib.nn import functional as F
from darklib.nn.containers import ModuleList, Sequential
from darklib.nn.linear import Linear
from darklib.nn.module import Module
from darklib.ops.indexing import index_copy
from darklib.ops.shape import cat
from darklib.tensor import Tensor

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """Adaptive softmax: ``forward(input, target)`` gives ``(output, loss)``, the target
    classes' log-probabilities and their negated mean; :meth:`log_prob` gives every
    class's log-probability, :meth:`predict` the most likely class.

    Args:
        in_features: features of each input row.
        n_classes: number of classes, sorted by falling frequency.
        cutoffs: increasing class indices in [1, n_classes - 1] where the clusters start.
        div_value: how much narrower each cluster's projection is than the previous one.
        head_bias: whether the head has a bias.
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        cutoffs: Sequence[int],
        div_value: float = 4.0,
        head_bias: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        cutoffs = list(cutoffs)
        if not cutoffs:
            raise InvalidValue("cutoffs should be a sequence of length larger than 0")
        if (
            cutoffs != sorted(cutoffs)
            or min(cutoffs) <= 0
            or max(cutoffs) > n_classes - 1
            or len(set(cutoffs)) != len(cutoffs)
            or any(int(c) != c for c in cutoffs)
        ):
            raise InvalidValue(
                "cutoffs should be a sequence of unique, positive integers sorted in an "
                "increasing order, where each value is between 1 and n_classes-1"
            )
        self.in_features, self.n_classes = in_features, n_classes
        self.cutoffs = [*cutoffs, n_classes]
        self.div_value, self.head_bias = div_value, head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        kw = {"device": device, "dtype": dtype}
        self.head = Linear(in_features, self.head_size, bias=head_bias, **kw)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hidden = int(in_features // (div_value ** (i + 1)))
            size = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(
                Sequential(
                    Linear(in_features, hidden, bias=False, **kw),
                    Linear(hidden, size, bias=False, **kw),
                )
            )

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for projection in self.tail:
            for layer in projection:
                layer.reset_parameters()

    def forward(self, input_: Tensor, target_: Tensor) -> _ASMoutput:
        batched = target_.ndim > 0
        if target_.ndim == 1:
            if input_.ndim != 2 or input_.shape[0] != target_.shape[0]:
                raise RuntimeError(
                    "Input and target should have the same size in the batch dimension: "
                    f"input {tuple(input_.shape)}, target {tuple(target_.shape)}"
                )
        elif target_.ndim == 0:
            if input_.ndim != 1:
                raise RuntimeError(
                    "1D target tensor expects 1D input tensors, but found inputs with size "
                    f"{tuple(input_.shape)}"
                )
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        x = input_ if batched else input_.unsqueeze(0)
        target = to_numpy(target_.reshape(-1).array).astype(np.int64)
        if target.size and (target.min() < 0 or target.max() >= self.n_classes):
            raise RuntimeError(
                f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                f"[{target.min()}, {target.max()}] were found."
            )
        # the head's class for each row: its own class, or its cluster's entry
        head_class = target.copy()
        output = zeros(len(target), dtype=x.dtype, device=x.device)
        for i in range(self.n_clusters):
            low, high = self.cutoffs[i], self.cutoffs[i + 1]
            rows = np.flatnonzero((target >= low) & (target < high))
            if not rows.size:
                continue
            head_class[rows] = self.shortlist_size + i
            where = tensor(rows, device=x.device)
            cluster = F.log_softmax(self.tail[i](x.index_select(0, where)), dim=1)
            local = tensor(target[rows] - low, device=x.device).unsqueeze(1)
            output = index_copy(output, 0, where, cluster.gather(1, local).squeeze(1))
        head = F.log_softmax(self.head(x), dim=1)
        picked = tensor(head_class, device=x.device).unsqueeze(1)
        output = output + head.gather(1, picked).squeeze(1)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _full_log_prob(self, x: Tensor, head_output: Tensor) -> Tensor:
        head = F.log_softmax(head_output, dim=1)
        parts = [head[:, : self.shortlist_size]]
        for i, projection in enumerate(self.tail):
            cluster = F.log_softmax(projection(x), dim=1)
            parts.append(cluster + head[:, self.shortlist_size + i].unsqueeze(1))
        return cat(parts, dim=1)

    def log_prob(self, input: Tensor) -> Tensor:
        """Log-probabilities of every class: (N, in_features) -> (N, n_classes)."""
        x = input if input.ndim == 2 else input.unsqueeze(0)
        out = self._full_log_prob(x, self.head(x))
        return out if input.ndim == 2 else out.squeeze(0)

    def predict(self, input: Tensor) -> Tensor:
        """The most likely class of each row (the full log-probabilities are computed only
        for rows whose head prefers a tail cluster)."""
        with no_grad():
            x = input if input.ndim == 2 else input.unsqueeze(0)
            head_output = self.head(x)
            best = head_output.argmax(dim=1)
            tail = to_numpy((best >= self.shortlist_size).array)
            if tail.any():
                rows = tensor(np.flatnonzero(tail), device=x.device)
                full = self._full_log_prob(x.index_select(0, rows), head_output[rows])
                best = index_copy(best, 0, rows, full.argmax(dim=1))
            return best if input.ndim == 2 else best.squeeze(0)
