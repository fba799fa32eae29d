"""``nn.utils.parametrizations``: weight_norm, spectral_norm and orthogonal as
parametrizations (:mod:`darklib.nn.utils.parametrize`), with torch's state_dict layout:

- ``weight_norm``: ``parametrizations.weight.original0`` (g, the norms) and ``original1`` (v);
- ``spectral_norm``: ``parametrizations.weight.original`` and the power-iteration buffers
  ``parametrizations.weight.0._u`` / ``_v``;
- ``orthogonal``: ``parametrizations.weight.original`` and ``parametrizations.weight.0.base``.
"""

from __future__ import annotations

from enum import Enum, auto

import numpy as np

from darklib.backend import get_xp
from darklib.creation import eye, randn, zeros
from darklib.grad_mode import no_grad
from darklib.nn.module import Module
from darklib.nn.utils import parametrize
from darklib.ops.decomp import householder_product, linalg_qr, matrix_exp, solve
from darklib.ops.reduction import norm
from darklib.ops.shape import cat
from darklib.tensor import Tensor

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


# ------------------------------------------------------------------ weight norm
def norm_except_dim(v: Tensor, pow: float = 2, dim: int = 0) -> Tensor:
    """torch's ``norm_except_dim``: the ``pow``-norm over every dimension but ``dim``, kept
    as size-1 dimensions; ``dim=-1`` means the norm of the whole tensor (0-d)."""
    if dim == -1:
        return norm(v, pow)
    dim = dim % v.ndim if v.ndim else 0
    others = tuple(d for d in range(v.ndim) if d != dim)
    if not others:
        return v.abs()
    return norm(v, pow, others, keepdim=True)


def _weight_norm(v: Tensor, g: Tensor, dim: int = 0) -> Tensor:
    """torch's ``_weight_norm``: ``v * (g / norm_except_dim(v, 2, dim))``."""
    return v * (g / norm_except_dim(v, 2, dim))


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrise ``module.<name>`` as ``g * v / ||v||`` (Salimans & Kingma 2016), the
    norm over every dimension but ``dim`` (``None``: the whole tensor). ``g`` is stored as
    ``parametrizations.<name>.original0`` and ``v`` as ``original1``; checkpoints of the
    legacy form (``<name>_g``, ``<name>_v``) load too.

    Example::

        >>> m = weight_norm(nn.Linear(20, 40))
        >>> m.parametrizations.weight.original0.shape
        darklib.Size([40, 1])
    """
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def _weight_norm_compat_hook(
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list,
        unexpected_keys: list,
        error_msgs: list,
    ) -> None:
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    module._register_load_state_dict_pre_hook(_weight_norm_compat_hook)
    return module


# ------------------------------------------------------------------ spectral norm
def _normalize_(dest: Tensor, x: Tensor, eps: float) -> None:
    """``F.normalize(x, dim=0, eps=eps, out=dest)`` on arrays (no graph)."""
    a = x.array
    xp = get_xp(a)
    dest.array[...] = a / xp.maximum(xp.linalg.norm(a), eps)  # (no host sync on the GPU)
    dest._version += 1


class _SpectralNorm(Module):
    def __init__(
        self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12
    ) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] "
                f"but got {dim})"
            )
        if n_power_iterations <= 0:
            raise ValueError(
                "Expected n_power_iterations to be positive, but got "
                f"n_power_iterations={n_power_iterations}"
            )
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            # u, v drawn from darklib's generator: copy torch's buffers to compare with it
            self.n_power_iterations = n_power_iterations
            weight_mat = self._reshape_weight_to_matrix(weight.detach())
            h, w = (int(n) for n in weight_mat.shape)
            u = randn(h, dtype=weight.dtype, device=weight.device)
            v = randn(w, dtype=weight.dtype, device=weight.device)
            _normalize_(u, u, eps)
            _normalize_(v, v, eps)
            self.register_buffer("_u", u)
            self.register_buffer("_v", v)
            self._power_method(weight_mat, 15)

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.flatten(1)

    def _power_method(self, weight_mat: Tensor, n_power_iterations: int) -> None:
        # u <- W v / ||W v||, v <- W^T u / ||W^T u||, in place in the buffers (torch's
        # order for the parametrization: u first)
        w = weight_mat.array
        with no_grad():
            for _ in range(n_power_iterations):
                _normalize_(self._u, Tensor._wrap(w @ self._v.array), self.eps)
                _normalize_(self._v, Tensor._wrap(w.conj().T @ self._u.array), self.eps)

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            from darklib.nn.functional import normalize

            return normalize(weight, dim=0, eps=self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = (u * weight_mat.mv(v)).sum()
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(
    module: Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> Module:
    """Divide ``module.<name>`` by its spectral norm (largest singular value), estimated by
    power iteration (Miyato et al. 2018, for GAN discriminators).

    In training mode each access runs ``n_power_iterations`` steps that update the buffers
    ``parametrizations.<name>.0._u`` and ``_v`` in place; in eval mode they are only used.
    The weight is viewed as a matrix with ``dim`` as rows (default 0, 1 for transposed
    convolutions). Registration runs 15 iterations from a random start.

    Args:
        module: the module.
        name: the weight's name. Default: ``"weight"``.
        n_power_iterations: power iterations per forward in training mode. Default: 1.
        eps: floor of the norms in the normalisations. Default: 1e-12.
        dim: the dimension of the output channels. Default: ``None`` (see above).
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if _is_conv_transpose(module) else 0
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps)
    )
    return module


def _is_conv_transpose(module: Module) -> bool:
    from darklib.nn.conv import ConvTranspose1d, ConvTranspose2d
    from darklib.nn.volumetric import ConvTranspose3d

    return isinstance(module, ConvTranspose1d | ConvTranspose2d | ConvTranspose3d)


# ------------------------------------------------------------------ orthogonal
class _OrthMaps(Enum):
    matrix_exp = auto()
    cayley = auto()
    householder = auto()


def _is_orthogonal(Q: Tensor) -> bool:
    n, k = Q.shape[-2], Q.shape[-1]
    q = Q.array
    xp = get_xp(q)
    eps = 10.0 * n * float(np.finfo(q.dtype).eps)
    prod = xp.swapaxes(q, -1, -2).conj() @ q
    return bool(xp.allclose(prod, xp.eye(k, dtype=q.dtype), atol=eps))


def _make_orthogonal(A: Tensor) -> Tensor:
    """The Q of A = QR with R's diagonal made positive (torch's geqrf-based form)."""
    Q, R = linalg_qr(A)
    return Q * R.diagonal(dim1=-2, dim2=-1).sgn().unsqueeze(-2)


def _geqrf(A: Tensor) -> tuple[Tensor, Tensor]:
    """LAPACK's geqrf: the Householder vectors below R and tau."""
    a = A.array
    h, tau = get_xp(a).linalg.qr(a, mode="raw")
    return Tensor._wrap(get_xp(a).ascontiguousarray(h.swapaxes(-1, -2))), Tensor._wrap(tau)


class _Orthogonal(Module):
    def __init__(
        self, weight: Tensor, orthogonal_map: _OrthMaps, *, use_trivialization: bool = True
    ) -> None:
        super().__init__()
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in (_OrthMaps.matrix_exp, _OrthMaps.cayley):
            X = X.tril()
            if n != k:
                pad = zeros(n, n - k, dtype=X.dtype, device=X.device)
                X = cat([X, pad.expand(*X.shape[:-2], -1, -1)], dim=-1)
            A = X - X.mH
            if self.orthogonal_map == _OrthMaps.matrix_exp:
                Q = matrix_exp(A)
            else:
                Id = eye(n, dtype=A.dtype, device=A.device)
                Q = solve(Id - 0.5 * A, Id + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(diagonal=-1)
            tau = 2.0 / (1.0 + (A * A).sum(dim=-2))
            Q = householder_product(A, tau)
            Q = Q * X.diagonal(dim1=-2, dim2=-1).int().unsqueeze(-2)
        if "base" in self._buffers:
            Q = self.base @ Q
        if transposed:
            Q = Q.mT
        return Q

    def right_inverse(self, Q: Tensor) -> Tensor:
        with no_grad():
            if tuple(Q.shape) != tuple(self.shape):
                raise ValueError(
                    f"Expected a matrix or batch of matrices of shape {tuple(self.shape)}. "
                    f"Got a tensor of shape {tuple(Q.shape)}."
                )
            Q_init = Q
            n, k = Q.shape[-2], Q.shape[-1]
            transpose = n < k
            if transpose:
                Q = Q.mT
                n, k = k, n
            if "base" not in self._buffers:
                if self.orthogonal_map in (_OrthMaps.cayley, _OrthMaps.matrix_exp):
                    raise NotImplementedError(
                        "It is not possible to assign to the matrix exponential "
                        "or the Cayley parametrizations when use_trivialization=False."
                    )
                A, tau = _geqrf(Q)
                a = A.array
                xp = get_xp(a)
                d = xp.diagonal(a, axis1=-2, axis2=-1)
                diag = xp.sign(d) * xp.where(tau.array == 0.0, -1.0, 1.0).astype(a.dtype)
                idx = xp.arange(k)
                a[..., idx, idx] = diag
                return A.mT if transpose else A
            if n == k:
                Q = _make_orthogonal(Q) if not _is_orthogonal(Q) else Q.clone()
            else:
                N = randn(*Q.shape[:-2], n, n - k, dtype=Q.dtype, device=Q.device)
                Q = _make_orthogonal(cat([Q, N], dim=-1))
            self.base = Q
            neg_id = zeros(*Q_init.shape, dtype=Q_init.dtype, device=Q_init.device)
            m = min(Q_init.shape[-2], Q_init.shape[-1])
            idx = get_xp(neg_id.array).arange(m)
            neg_id.array[..., idx, idx] = -1.0
            return neg_id


def orthogonal(
    module: Module,
    name: str = "weight",
    orthogonal_map: str | None = None,
    *,
    use_trivialization: bool = True,
) -> Module:
    """Keep ``module.<name>`` (a matrix or batch of them) orthogonal (or with orthonormal
    rows/columns when not square) through ``orthogonal_map``: ``"matrix_exp"`` (default
    for square), ``"cayley"`` or ``"householder"`` (default otherwise). With
    ``use_trivialization`` (default) the buffer ``parametrizations.<name>.0.base`` holds
    the starting point and the parametrization moves around it.

    Raises:
        ValueError: if the tensor is missing or has fewer than 2 dimensions, or the map is
            not one of the three.
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(
            f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions."
        )
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    orth_enum = getattr(_OrthMaps, orthogonal_map, None)
    if orth_enum is None:
        raise ValueError(
            'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
            f"Got: {orthogonal_map}"
        )
    orth = _Orthogonal(weight, orth_enum, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module
