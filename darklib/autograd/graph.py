"""``darklib.autograd.graph``, as ``torch.autograd.graph``: the graph's node type and the
hooks on saved tensors (:mod:`darklib.autograd.saved_hooks`)."""

from darklib.autograd.function import Node as Node
from darklib.autograd.saved_hooks import (
    disable_saved_tensors_hooks as disable_saved_tensors_hooks,
)
from darklib.autograd.saved_hooks import save_on_cpu as save_on_cpu
from darklib.autograd.saved_hooks import saved_tensors_hooks as saved_tensors_hooks
