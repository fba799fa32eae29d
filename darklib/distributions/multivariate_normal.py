"""The multivariate normal distribution, by covariance, precision or Cholesky factor."""

from __future__ import annotations

import math
from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.distribution import Distribution
from darklib.distributions.utils import alias, as_float, lazy_property, standard_normal
from darklib.tensor import Size, Tensor

__all__ = ["MultivariateNormal"]


def batch_mv(L: Tensor, x: Tensor) -> Tensor:
    """``L @ x`` over broadcast batch dimensions, ``x`` a batch of vectors."""
    return dl.matmul(L, x.unsqueeze(-1)).squeeze(-1)


def solve_lower(L: Tensor, b: Tensor) -> Tensor:
    """``L^-1 b`` for a lower triangular ``L``, in the two operands' common dtype (a
    float32 covariance with a float64 location promotes, as torch's distributions do)."""
    dt = dl.promote_types(L.dtype, b.dtype)
    return dl.linalg.solve_triangular(L.to(dt), b.to(dt), upper=False)


def batch_mahalanobis(L: Tensor, x: Tensor) -> Tensor:
    """``x^T (L L^T)^-1 x`` for a lower Cholesky factor ``L`` (batch dims broadcast)."""
    y = solve_lower(L, x.unsqueeze(-1)).squeeze(-1)
    return y.pow(2).sum(-1)


def half_log_det(L: Tensor) -> Tensor:
    """``log det(L L^T) / 2`` for a Cholesky factor ``L``."""
    return L.diagonal(dim1=-2, dim2=-1).log().sum(-1)


def _precision_to_scale_tril(P: Tensor) -> Tensor:
    # The Cholesky factor of P's flip gives an upper factor U of P with P = U^T U... read
    # backwards: P^-1 = L L^T with L = (flip(chol(flip(P)))^T)^-1, lower triangular.
    Lf = dl.linalg.cholesky(dl.flip(P, (-2, -1)))
    L_inv = dl.flip(Lf, (-2, -1)).mT
    eye = dl.eye(P.shape[-1], dtype=P.dtype, device=P.device)
    return dl.linalg.solve_triangular(L_inv, eye, upper=False)


def _matrix(value: Any, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        value = dl.tensor(value, dtype=dl.get_default_dtype())
    if value.dim() < 2:
        raise ValueError(
            f"{name} matrix must be at least two-dimensional, with optional leading batch "
            f"dimensions (got shape {tuple(value.shape)})"
        )
    return value


class TrilParametrised:
    """``scale_tril``, ``covariance_matrix`` and ``precision_matrix`` of a distribution kept
    as the Cholesky factor ``_unbroadcasted_scale_tril``, each expanded to
    ``_matrix_shape()`` (MultivariateNormal, Wishart)."""

    _unbroadcasted_scale_tril: Tensor

    def _matrix_shape(self) -> tuple:
        raise NotImplementedError

    @lazy_property
    def scale_tril(self) -> Tensor:
        return self._unbroadcasted_scale_tril.expand(self._matrix_shape())

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        L = self._unbroadcasted_scale_tril
        return dl.matmul(L, L.mT).expand(self._matrix_shape())

    @lazy_property
    def precision_matrix(self) -> Tensor:
        return dl.cholesky_inverse(self._unbroadcasted_scale_tril).expand(self._matrix_shape())


class MultivariateNormal(TrilParametrised, Distribution):
    """Gaussian over vectors of length n with mean ``loc`` (..., n) and exactly one of
    ``covariance_matrix``, ``precision_matrix`` (positive definite) or ``scale_tril`` (lower
    triangular with a positive diagonal), each (..., n, n); batch dimensions broadcast."""

    arg_constraints = {
        "loc": constraints.real_vector,
        "covariance_matrix": constraints.positive_definite,
        "precision_matrix": constraints.positive_definite,
        "scale_tril": constraints.lower_cholesky,
    }
    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self,
        loc: Any,
        covariance_matrix: Any = None,
        precision_matrix: Any = None,
        scale_tril: Any = None,
        validate_args: bool | None = None,
    ):
        if not isinstance(loc, Tensor):
            loc = dl.tensor(loc, dtype=dl.get_default_dtype())
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = [m is not None for m in (covariance_matrix, precision_matrix, scale_tril)]
        if sum(given) != 1:
            raise ValueError(
                "Exactly one of covariance_matrix or precision_matrix or scale_tril may be "
                "specified."
            )
        name, matrix = next(
            (n, m)
            for n, m in (
                ("scale_tril", scale_tril),
                ("covariance_matrix", covariance_matrix),
                ("precision_matrix", precision_matrix),
            )
            if m is not None
        )
        matrix = _matrix(matrix, name)
        n = loc.shape[-1]
        if matrix.shape[-2:] != (n, n):
            raise ValueError(
                f"MultivariateNormal: {name} has shape {tuple(matrix.shape)}, expected "
                f"(..., {n}, {n}) to match loc of shape {tuple(loc.shape)}"
            )
        try:
            batch_shape = Size(dl.broadcast_shapes(matrix.shape[:-2], loc.shape[:-1]))
        except (ValueError, RuntimeError):
            raise ValueError(
                f"MultivariateNormal: the batch shapes of loc {tuple(loc.shape)} and {name} "
                f"{tuple(matrix.shape)} do not broadcast"
            ) from None
        setattr(self, name, matrix.expand((*tuple(batch_shape), n, n)))
        self.loc = loc.expand((*tuple(batch_shape), n))
        super().__init__(batch_shape, loc.shape[-1:], validate_args=validate_args)
        if name == "scale_tril":
            self._unbroadcasted_scale_tril = matrix
        elif name == "covariance_matrix":
            self._unbroadcasted_scale_tril = dl.linalg.cholesky(matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(matrix)

    def expand(self, batch_shape: Any, _instance: Any = None) -> MultivariateNormal:
        new = self._get_checked_instance(MultivariateNormal, _instance)
        batch_shape = Size(tuple(batch_shape))
        loc_shape = tuple(batch_shape) + tuple(self._event_shape)
        cov_shape = loc_shape + tuple(self._event_shape)
        new.loc = self.loc.expand(loc_shape)
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name].expand(cov_shape)
        return self._init_expanded(new, batch_shape)

    def _matrix_shape(self) -> tuple:
        return tuple(self._batch_shape) + tuple(self._event_shape) * 2

    mean = mode = alias("loc")

    @property
    def variance(self) -> Tensor:
        shape = tuple(self._batch_shape) + tuple(self._event_shape)
        return self._unbroadcasted_scale_tril.pow(2).sum(-1).expand(shape)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        eps = standard_normal(self._extended_shape(sample_shape), self.loc)
        return self.loc + batch_mv(self._unbroadcasted_scale_tril, eps)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        diff = as_float(value, self.loc) - self.loc
        M = batch_mahalanobis(self._unbroadcasted_scale_tril, diff)
        n = self._event_shape[0]
        return -0.5 * (n * math.log(2 * math.pi) + M) - half_log_det(self._unbroadcasted_scale_tril)

    def entropy(self) -> Tensor:
        n = self._event_shape[0]
        H = 0.5 * n * (1.0 + math.log(2 * math.pi)) + half_log_det(self._unbroadcasted_scale_tril)
        return H if len(self._batch_shape) == 0 else H.expand(self._batch_shape)
