"""The Wishart distribution over p x p positive definite matrices: the scatter matrix
sum_k x_k x_k^T of ``df`` Gaussian vectors with covariance ``covariance_matrix`` (given as
it, its inverse or its lower Cholesky factor), for real ``df`` > p - 1."""

from __future__ import annotations

import math
import warnings
from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.exp_family import ExponentialFamily
from darklib.distributions.gamma import Chi2
from darklib.distributions.multivariate_normal import TrilParametrised, _precision_to_scale_tril
from darklib.distributions.utils import standard_normal
from darklib.tensor import Size, Tensor

__all__ = ["Wishart"]

_LOG_2 = math.log(2.0)


def _mvdigamma(x: Tensor, p: int) -> Tensor:
    """The multivariate digamma: sum_{i < p} digamma(x - i / 2)."""
    offsets = dl.arange(p, dtype=x.dtype, device=x.device) / 2
    return dl.digamma(x.unsqueeze(-1) - offsets).sum(-1)


class Wishart(TrilParametrised, ExponentialFamily):
    """Wishart distribution with ``df`` degrees of freedom (> p - 1; a number or a tensor of
    the batch shape) and exactly one of ``covariance_matrix``, ``precision_matrix`` (positive
    definite) or ``scale_tril`` (lower triangular, positive diagonal), each (..., p, p).

    The density is |X|^((df - p - 1)/2) exp(-tr(S^-1 X) / 2) / (2^(df p/2) |S|^(df/2)
    Gamma_p(df / 2)); ``rsample`` uses the Bartlett decomposition."""

    support = constraints.positive_definite
    has_rsample = True
    _mean_carrier_measure = 0

    @property
    def arg_constraints(self) -> dict[str, constraints.Constraint]:  # type: ignore[override]
        return {
            "covariance_matrix": constraints.positive_definite,
            "precision_matrix": constraints.positive_definite,
            "scale_tril": constraints.lower_cholesky,
            "df": constraints.greater_than(self.event_shape[-1] - 1),
        }

    def __init__(
        self,
        df: Any,
        covariance_matrix: Any = None,
        precision_matrix: Any = None,
        scale_tril: Any = None,
        validate_args: bool | None = None,
    ):
        given = [
            (n, m)
            for n, m in (
                ("covariance_matrix", covariance_matrix),
                ("precision_matrix", precision_matrix),
                ("scale_tril", scale_tril),
            )
            if m is not None
        ]
        if len(given) != 1:
            raise AssertionError(
                "Exactly one of covariance_matrix or precision_matrix or scale_tril may be "
                "specified."
            )
        name, param = given[0]
        if not isinstance(param, Tensor):
            param = dl.tensor(param, dtype=dl.get_default_dtype())
        if param.dim() < 2:
            raise ValueError(
                "scale_tril must be at least two-dimensional, with optional leading batch "
                "dimensions"
            )
        if isinstance(df, Tensor):
            batch_shape = Size(dl.broadcast_shapes(param.shape[:-2], df.shape))
            self.df = df.expand(batch_shape)
        else:
            batch_shape = Size(param.shape[:-2])
            self.df = dl.tensor(float(df), dtype=param.dtype, device=param.device)
        event_shape = Size(param.shape[-2:])
        p = event_shape[-1]
        if bool((self.df <= p - 1).any()):
            raise ValueError(f"Value of df={df} expected to be greater than ndim - 1 = {p - 1}.")
        setattr(self, name, param.expand((*tuple(batch_shape), -1, -1)))
        if bool((self.df < p).any()):
            warnings.warn(
                "Low df values detected. Singular samples are highly likely to occur for "
                "ndim - 1 < df < ndim.",
                stacklevel=2,
            )
        super().__init__(batch_shape, event_shape, validate_args=validate_args)
        if name == "scale_tril":
            self._unbroadcasted_scale_tril = param
        elif name == "covariance_matrix":
            self._unbroadcasted_scale_tril = dl.linalg.cholesky(param)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(param)
        self._dist_chi2 = self._chi2(self.df, batch_shape)

    def _chi2(self, df: Tensor, batch_shape: Size) -> Chi2:
        """The chi-square laws of the Bartlett factor's squared diagonal: df - i, i < p."""
        p = self._event_shape[-1]
        L = self._unbroadcasted_scale_tril
        offsets = dl.arange(p, dtype=L.dtype, device=L.device).expand((*tuple(batch_shape), p))
        return Chi2(df.unsqueeze(-1) - offsets)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Wishart:
        new = self._get_checked_instance(Wishart, _instance)
        batch_shape = Size(tuple(batch_shape))
        matrix_shape = (*tuple(batch_shape), *tuple(self._event_shape))
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril.expand(matrix_shape)
        new.df = self.df.expand(batch_shape)
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name].expand(matrix_shape)
        new = self._init_expanded(new, batch_shape)
        new._dist_chi2 = new._chi2(new.df, batch_shape)
        return new

    # ------------------------------------------------------------------ parametrisations

    def _matrix_shape(self) -> tuple:
        return (*tuple(self._batch_shape), *tuple(self._event_shape))

    # ------------------------------------------------------------------ moments

    def _df_matrix(self, df: Tensor) -> Tensor:
        return df.reshape((*tuple(self._batch_shape), 1, 1))

    @property
    def mean(self) -> Tensor:
        return self._df_matrix(self.df.expand(self._batch_shape)) * self.covariance_matrix

    @property
    def mode(self) -> Tensor:
        factor = self.df.expand(self._batch_shape) - self._event_shape[-1] - 1
        factor = dl.where(factor <= 0, math.nan, factor)
        return self._df_matrix(factor) * self.covariance_matrix

    @property
    def variance(self) -> Tensor:
        V = self.covariance_matrix
        d = V.diagonal(dim1=-2, dim2=-1)
        outer = d.unsqueeze(-1) * d.unsqueeze(-2)
        return self._df_matrix(self.df.expand(self._batch_shape)) * (V.pow(2) + outer)

    # ------------------------------------------------------------------ draws

    def _bartlett_sampling(self, sample_shape: Any) -> Tensor:
        """L A A^T L^T, A lower triangular with sqrt(chi2(df - i)) on its diagonal and
        standard normals below it."""
        chi = self._dist_chi2.rsample(sample_shape).sqrt()
        chi = chi.clamp(min=dl.finfo(chi.dtype).eps)
        below = standard_normal(self._extended_shape(sample_shape), chi).tril(-1)
        A = dl.diag_embed(chi) + below
        chol = dl.matmul(self._unbroadcasted_scale_tril, A)
        return dl.matmul(chol, chol.mT)

    def _singular(self, sample: Tensor) -> Tensor:
        """Per draw (over the sample dims): whether any matrix of the batch is not positive
        definite."""
        with dl.no_grad():
            bad = ~self.support.check(sample)
        n_batch = len(self._batch_shape)
        if n_batch:
            bad = bad.reshape((*tuple(bad.shape[: bad.dim() - n_batch]), -1)).any(-1)
        return bad

    def rsample(self, sample_shape: Any = (), max_try_correction: int | None = None) -> Tensor:
        """Bartlett draws; draws with a singular matrix are drawn again, up to
        ``max_try_correction`` times (10 by default), with a warning (a draw may still be
        singular then: its log_prob is -inf)."""
        if max_try_correction is None:
            max_try_correction = 10
        sample_shape = Size(tuple(sample_shape))
        sample = self._bartlett_sampling(sample_shape)
        singular = self._singular(sample)
        if bool(singular.any()):
            warnings.warn("Singular sample detected.", stacklevel=2)
            mask_shape = (*tuple(singular.shape), *([1] * (len(self._batch_shape) + 2)))
            for _ in range(max_try_correction):
                fresh = self._bartlett_sampling(sample_shape)
                sample = dl.where(singular.reshape(mask_shape), fresh, sample)
                singular = self._singular(sample)
                if not bool(singular.any()):
                    break
        return sample

    # ------------------------------------------------------------------ densities

    def _log_det_scale(self) -> Tensor:
        """log |S|^(1/2): the log diagonal of the Cholesky factor, summed."""
        return dl.log(self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1)).sum(-1)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        nu = self.df
        p = self._event_shape[-1]
        L = self._unbroadcasted_scale_tril
        trace = dl.cholesky_solve(value, L).diagonal(dim1=-2, dim2=-1).sum(-1)
        return (
            -nu * (p * _LOG_2 / 2 + self._log_det_scale())
            - dl.mvlgamma(nu / 2, p=p)
            + (nu - p - 1) / 2 * dl.linalg.slogdet(value).logabsdet
            - trace / 2
        )

    def entropy(self) -> Tensor:
        nu = self.df
        p = self._event_shape[-1]
        return (
            (p + 1) * (p * _LOG_2 / 2 + self._log_det_scale())
            + dl.mvlgamma(nu / 2, p=p)
            - (nu - p - 1) / 2 * _mvdigamma(nu / 2, p)
            + nu * p / 2
        )

    # ------------------------------------------------------------------ exponential family

    @property
    def _natural_params(self) -> tuple[Tensor, Tensor]:
        p = self._event_shape[-1]
        return -self.precision_matrix / 2, (self.df - p - 1) / 2

    def _log_normalizer(self, x: Tensor, y: Tensor) -> Tensor:
        p = self._event_shape[-1]
        half = y + (p + 1) / 2
        return half * (-dl.linalg.slogdet(-2 * x).logabsdet + _LOG_2 * p) + dl.mvlgamma(half, p=p)
