"""The multivariate normal with a low-rank plus diagonal covariance W W^T + diag(D)."""

from __future__ import annotations

import math
from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.distribution import Distribution
from darklib.distributions.multivariate_normal import batch_mv, half_log_det, solve_lower
from darklib.distributions.utils import alias, as_float, lazy_property, standard_normal
from darklib.tensor import Size, Tensor

__all__ = ["LowRankMultivariateNormal"]


class LowRankMultivariateNormal(Distribution):
    """Gaussian over vectors of length n with mean ``loc`` (..., n) and covariance
    ``cov_factor @ cov_factor.mT + diag(cov_diag)``, ``cov_factor`` (..., n, r) and
    ``cov_diag`` (..., n) positive; log_prob, entropy and draws cost O(n r^2), through the
    r x r capacitance matrix I + W^T D^-1 W (Woodbury's identity and the determinant
    lemma)."""

    arg_constraints = {
        "loc": constraints.real_vector,
        "cov_factor": constraints.independent(constraints.real, 2),
        "cov_diag": constraints.independent(constraints.positive, 1),
    }
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: Any, cov_factor: Any, cov_diag: Any, validate_args: bool | None = None):
        loc, cov_factor, cov_diag = (
            v if isinstance(v, Tensor) else dl.tensor(v, dtype=dl.get_default_dtype())
            for v in (loc, cov_factor, cov_diag)
        )
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        n = loc.shape[-1]
        if cov_factor.dim() < 2:
            raise ValueError(
                "cov_factor must be at least two-dimensional, with optional leading batch "
                "dimensions"
            )
        if cov_factor.shape[-2] != n:
            raise ValueError(
                f"cov_factor must be a batch of matrices with shape {n} x m, got shape "
                f"{tuple(cov_factor.shape)}"
            )
        if cov_diag.dim() < 1 or cov_diag.shape[-1] != n:
            raise ValueError(
                f"cov_diag must be a batch of vectors with shape {(n,)}, got shape "
                f"{tuple(cov_diag.shape)}"
            )
        try:
            batch_shape = Size(
                dl.broadcast_shapes(loc.shape[:-1], cov_factor.shape[:-2], cov_diag.shape[:-1])
            )
        except (ValueError, RuntimeError):
            raise ValueError(
                f"Incompatible batch shapes: loc {tuple(loc.shape)}, cov_factor "
                f"{tuple(cov_factor.shape)}, cov_diag {tuple(cov_diag.shape)}"
            ) from None
        batch = tuple(batch_shape)
        self.loc = loc.expand((*batch, n))
        self.cov_factor = cov_factor.expand((*batch, *tuple(cov_factor.shape[-2:])))
        self.cov_diag = cov_diag.expand((*batch, n))
        self._unbroadcasted_cov_factor = cov_factor
        self._unbroadcasted_cov_diag = cov_diag
        super().__init__(batch_shape, (n,), validate_args=validate_args)
        self._capacitance_tril = self._capacitance(cov_factor, cov_diag)  # (once validated)

    @staticmethod
    def _capacitance(W: Tensor, D: Tensor) -> Tensor:
        """The lower Cholesky factor of I + W^T D^-1 W."""
        Wt_Dinv = W.mT / D.unsqueeze(-2)
        K = dl.matmul(Wt_Dinv, W)
        eye = dl.eye(W.shape[-1], dtype=K.dtype, device=K.device)
        return dl.linalg.cholesky(K + eye)

    def expand(self, batch_shape: Any, _instance: Any = None) -> LowRankMultivariateNormal:
        new = self._get_checked_instance(LowRankMultivariateNormal, _instance)
        batch = tuple(batch_shape)
        n = self._event_shape[0]
        new.loc = self.loc.expand((*batch, n))
        new.cov_factor = self.cov_factor.expand((*batch, *tuple(self.cov_factor.shape[-2:])))
        new.cov_diag = self.cov_diag.expand((*batch, n))
        new._unbroadcasted_cov_factor = self._unbroadcasted_cov_factor
        new._unbroadcasted_cov_diag = self._unbroadcasted_cov_diag
        new._capacitance_tril = self._capacitance_tril
        return self._init_expanded(new, Size(batch))

    mean = mode = alias("loc")

    def _matrix_shape(self) -> tuple:
        return tuple(self._batch_shape) + tuple(self._event_shape) * 2

    @lazy_property
    def variance(self) -> Tensor:
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        return (W.pow(2).sum(-1) + D).expand(tuple(self._batch_shape) + tuple(self._event_shape))

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        cov = dl.matmul(W, W.mT) + dl.diag_embed(D)
        return cov.expand(self._matrix_shape())

    @lazy_property
    def scale_tril(self) -> Tensor:
        return dl.linalg.cholesky(self.covariance_matrix)

    @lazy_property
    def precision_matrix(self) -> Tensor:
        # Woodbury: D^-1 - D^-1 W C^-1 W^T D^-1, with C = L L^T the capacitance
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        A = solve_lower(self._capacitance_tril, W.mT / D.unsqueeze(-2))  # L^-1 W^T D^-1
        precision = dl.diag_embed(1 / D) - dl.matmul(A.mT, A)
        return precision.expand(self._matrix_shape())

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        eps_w = standard_normal((*tuple(shape[:-1]), W.shape[-1]), self.loc)
        eps_d = standard_normal(shape, self.loc)
        return self.loc + batch_mv(W, eps_w) + D.sqrt() * eps_d

    def _log_det(self) -> Tensor:
        """log det(W W^T + D) = 2 log det L + sum log D (the matrix determinant lemma)."""
        log_det = 2 * half_log_det(self._capacitance_tril)
        return log_det + self._unbroadcasted_cov_diag.log().sum(-1)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        diff = as_float(value, self.loc) - self.loc
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        # Woodbury: x^T D^-1 x - |L^-1 W^T D^-1 x|^2
        Wt_Dinv_x = batch_mv(W.mT, diff / D)
        inner = solve_lower(self._capacitance_tril, Wt_Dinv_x.unsqueeze(-1)).squeeze(-1)
        M = (diff.pow(2) / D).sum(-1) - inner.pow(2).sum(-1)
        n = self._event_shape[0]
        return -0.5 * (n * math.log(2 * math.pi) + M + self._log_det())

    def entropy(self) -> Tensor:
        n = self._event_shape[0]
        H = 0.5 * (n * (1.0 + math.log(2 * math.pi)) + self._log_det())
        return H if len(self._batch_shape) == 0 else H.expand(self._batch_shape)
