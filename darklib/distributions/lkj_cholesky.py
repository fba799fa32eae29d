"""The LKJ distribution over lower Cholesky factors of correlation matrices (Lewandowski,
Kurowicka and Joe, 2009): the correlation matrix L L^T has density proportional to
det(L L^T)^(concentration - 1); draws by the onion method."""

from __future__ import annotations

import math
from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.dirichlet import Beta
from darklib.distributions.distribution import Distribution
from darklib.distributions.utils import broadcast_all, standard_normal
from darklib.tensor import Size, Tensor

__all__ = ["LKJCholesky"]


class LKJCholesky(Distribution):
    """LKJ distribution of the ``dim`` x ``dim`` lower Cholesky factor of a correlation
    matrix, with positive ``concentration`` (eta): 1 is uniform over correlation matrices,
    larger values favour the identity, smaller ones strong correlations."""

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim: int, concentration: Any = 1.0, validate_args: bool | None = None):
        if dim < 2:
            raise ValueError(
                f"Expected dim to be an integer greater than or equal to 2. Found dim={dim}."
            )
        self.dim = dim
        (self.concentration,) = broadcast_all(concentration)
        batch_shape = self.concentration.shape
        # the onion method (Lewandowski et al., 2009, sec. 3.2): row i (i >= 1) has the
        # squared norm of its off-diagonal part y_i ~ Beta(i / 2, eta + (dim - 2) / 2 -
        # (i - 1) / 2); row 0 gets a dummy draw. (torch's first parameter is i - 1/2, which
        # gives rows i >= 2 correlations of the wrong law; this one has every correlation's
        # marginal Beta(eta - 1 + dim / 2, same) on (-1, 1), as log_prob's density has.)
        marginal = self.concentration + 0.5 * (dim - 2)
        c = self.concentration
        offset = dl.arange(dim - 1, dtype=c.dtype, device=c.device)
        offset = dl.cat([dl.zeros(1, dtype=c.dtype, device=c.device), offset])
        self._beta = Beta(0.5 * offset + 0.5, marginal.unsqueeze(-1) - 0.5 * offset)
        super().__init__(batch_shape, Size((dim, dim)), validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> LKJCholesky:
        new = self._get_checked_instance(LKJCholesky, _instance)
        batch_shape = Size(tuple(batch_shape))
        new.dim = self.dim
        new.concentration = self.concentration.expand(batch_shape)
        new._beta = self._beta.expand((*tuple(batch_shape), self.dim))
        return self._init_expanded(new, batch_shape)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        with dl.no_grad():
            y = self._beta.sample(sample_shape).unsqueeze(-1)
            # a direction uniform on the sphere of dimension i for row i (below the diagonal)
            u = standard_normal(self._extended_shape(sample_shape), y).tril(-1)
            norm = u.norm(dim=-1, keepdim=True)
            row = dl.arange(self.dim, device=y.device).reshape((-1, 1))
            u = dl.where(row == 0, 0.0, u / dl.where(row == 0, 1.0, norm))
            w = dl.sqrt(y) * u
            tiny = dl.finfo(w.dtype).tiny
            diag = (1 - w.pow(2).sum(-1)).clamp(min=tiny).sqrt()
            return w + dl.diag_embed(diag)

    def log_prob(self, value: Any) -> Tensor:
        # log p(L) = sum_{i >= 1} (2 (eta - 1) + dim - 1 - i) log L_ii - log normaliser
        if self._validate_args:
            self._validate_sample(value)
        diag = value.diagonal(dim1=-1, dim2=-2)[..., 1:]
        order = dl.arange(2, self.dim + 1, device=self.concentration.device)
        order = 2 * (self.concentration - 1).unsqueeze(-1) + self.dim - order
        unnormalised = (order * dl.log(diag)).sum(-1)
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        log_norm = (
            0.5 * dm1 * math.log(math.pi) + dl.mvlgamma(alpha - 0.5, p=dm1) - dl.lgamma(alpha) * dm1
        )
        return unnormalised - log_norm
