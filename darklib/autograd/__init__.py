"""Reverse-mode automatic differentiation, define-by-run, as ``torch.autograd``.

Every differentiable op is a :class:`Function` whose ``forward`` and ``backward`` work on
raw arrays (numpy or cupy). The modules of this package:

- :mod:`~darklib.autograd.function`: ``Function.apply`` runs an op and records a
  :class:`Node` (the op's ``ctx``) as its output's ``grad_fn``; user Functions.
- :mod:`~darklib.autograd.engine`: ``backward`` and ``grad``, the walk back through the
  nodes (hooks, ``retain_graph``, :func:`unbroadcast`).
- :mod:`~darklib.autograd.higher_order`: backward ops recorded for ``create_graph``.
- torch's submodules: :mod:`~darklib.autograd.graph` (saved-tensor hooks, over
  :mod:`~darklib.autograd.saved_hooks`), :mod:`~darklib.autograd.functional` (Jacobians,
  Hessians), :mod:`~darklib.autograd.gradcheck`, :mod:`~darklib.autograd.anomaly_mode`,
  :mod:`~darklib.autograd.forward_ad` and ``profiler`` (:mod:`darklib.profiler`). Those
  that need the ops join when ``darklib`` has loaded them (:func:`_load_tools`).
"""

from __future__ import annotations

from darklib import grad_mode  # (re-exported, as torch.autograd.grad_mode)
from darklib.autograd import graph
from darklib.autograd.engine import backward, grad, unbroadcast
from darklib.autograd.function import (
    Function,
    FunctionCtx,
    Node,
    broadcast_error,
    broadcast_message,
    once_differentiable,
    watch,
)

# re-exported, so that dl.autograd.no_grad works as torch.autograd.no_grad does
from darklib.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from darklib.tensor import Tensor

Variable = Tensor  # torch.autograd.Variable: today simply the tensor type


def _load_tools() -> None:
    """torch.autograd's tools that are built on the ops (Jacobians, gradcheck, forward AD,
    the profiler), called by ``darklib`` once the ops are loaded. As in torch,
    ``autograd.gradcheck`` is then the function (``darklib.autograd.gradcheck.gradcheck``
    still imports)."""
    import sys

    from darklib import profiler
    from darklib.autograd import anomaly_mode, forward_ad, functional
    from darklib.autograd import gradcheck as _gradcheck

    g = globals()
    g.update(
        functional=functional,
        forward_ad=forward_ad,
        anomaly_mode=anomaly_mode,
        detect_anomaly=anomaly_mode.detect_anomaly,
        set_detect_anomaly=anomaly_mode.set_detect_anomaly,
        gradcheck=_gradcheck.gradcheck,
        gradgradcheck=_gradcheck.gradgradcheck,
        GradcheckError=_gradcheck.GradcheckError,
        profiler=profiler,
    )
    sys.modules[__name__ + ".profiler"] = profiler  # (torch.autograd.profiler's home too)
