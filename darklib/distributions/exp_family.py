"""``ExponentialFamily``: the base of the families whose density has the form
``p(x; theta) = exp(<t(x), theta> - F(theta) + k(x))`` (torch.distributions.ExponentialFamily).

A member names its natural parameters ``theta`` (``_natural_params``), its log normaliser
``F`` (``_log_normalizer``) and the expectation of its carrier measure ``E[k(x)]``
(``_mean_carrier_measure``); the entropy and the KL divergence between two members of the
same family then follow from F and its gradient (the mean of ``t(x)``), found by autograd:

    H(p)       = F(theta_p) - <theta_p, grad F(theta_p)> - E_p[k(x)]
    KL(p || q) = F(theta_q) - F(theta_p) - <theta_q - theta_p, grad F(theta_p)>

(the Bregman divergence of F; Nielsen and Nock, "Entropies and cross-entropies of
exponential families", 2010).
"""

from __future__ import annotations

from typing import Any

import darklib as dl
from darklib.distributions.distribution import Distribution
from darklib.tensor import Tensor

__all__ = ["ExponentialFamily"]


class ExponentialFamily(Distribution):
    """Abstract base of the exponential families: a subclass gives ``_natural_params``,
    ``_log_normalizer(*natural_params)`` and ``_mean_carrier_measure`` to get the generic
    ``entropy`` and the Bregman-divergence KL between two of its members."""

    @property
    def _natural_params(self) -> tuple[Tensor, ...]:
        """The natural parameters theta, a tuple of tensors."""
        raise NotImplementedError

    def _log_normalizer(self, *natural_params: Tensor) -> Tensor:
        """The log normaliser F(theta), of the batch shape."""
        raise NotImplementedError

    @property
    def _mean_carrier_measure(self) -> Any:
        """E[k(x)], the expectation of the carrier measure."""
        raise NotImplementedError

    def _log_normalizer_and_grads(self) -> tuple[list[Tensor], Tensor, tuple[Tensor, ...]]:
        """The natural parameters as new leaves (detached, as torch's: what is built from
        them carries no gradient back to this distribution's parameters), F at them and its
        gradients (themselves differentiable)."""
        params = [p.detach().requires_grad_() for p in self._natural_params]
        with dl.enable_grad():
            log_norm = self._log_normalizer(*params)
            grads = dl.autograd.grad(log_norm.sum(), params, create_graph=True)
        return params, log_norm, grads

    def entropy(self) -> Tensor:
        """The entropy from the log normaliser: F - <theta, grad F> - E[k(x)]."""
        carrier = self._mean_carrier_measure
        params, log_norm, grads = self._log_normalizer_and_grads()
        result = log_norm - carrier
        for theta, g in zip(params, grads):
            result = result - (theta * g).reshape((*tuple(self._batch_shape), -1)).sum(-1)
        return result
