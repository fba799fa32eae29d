"""The hook-based (legacy) ``nn.utils.weight_norm`` and ``nn.utils.spectral_norm``, with
torch's state_dict layout: ``weight_g``/``weight_v`` parameters for weight norm;
``weight_orig`` parameter and ``weight_u``/``weight_v`` buffers for spectral norm. A forward
pre-hook recomputes ``module.weight`` (a plain attribute) before every call.
:mod:`darklib.nn.utils.parametrizations` has the newer forms."""

from __future__ import annotations

import warnings
from typing import Any, TypeVar

from darklib.backend import get_xp
from darklib.creation import randn
from darklib.grad_mode import no_grad
from darklib.nn.module import Module
from darklib.nn.parameter import Parameter
from darklib.nn.utils.parametrizations import _is_conv_transpose, _normalize_, _weight_norm
from darklib.nn.utils.parametrizations import norm_except_dim as _norm_except_dim
from darklib.tensor import Tensor

__all__ = [
    "SpectralNorm",
    "SpectralNormLoadStateDictPreHook",
    "SpectralNormStateDictHook",
    "WeightNorm",
    "remove_spectral_norm",
    "remove_weight_norm",
    "spectral_norm",
    "weight_norm",
]

T_module = TypeVar("T_module", bound=Module)


# ------------------------------------------------------------------ weight norm
class WeightNorm:
    """The forward pre-hook of :func:`weight_norm`: ``name = g * v / ||v||``."""

    def __init__(self, name: str, dim: int | None) -> None:
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module: Module) -> Tensor:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return _weight_norm(v, g, self.dim)

    @staticmethod
    def apply(module: Module, name: str, dim: int | None) -> WeightNorm:
        warnings.warn(
            "`torch.nn.utils.weight_norm` is deprecated in favor of "
            "`torch.nn.utils.parametrizations.weight_norm`.",
            FutureWarning,
            stacklevel=3,
        )
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(
                    f"Cannot register two weight_norm hooks on the same parameter {name}"
                )
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        del module._parameters[name]
        module.register_parameter(
            name + "_g", Parameter(_norm_except_dim(weight.detach(), 2, fn.dim))
        )
        module.register_parameter(name + "_v", Parameter(weight.detach()))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: T_module, name: str = "weight", dim: int | None = 0) -> T_module:
    """Replace parameter ``name`` by ``name_g`` (the norms over every dimension but
    ``dim``; ``None``: one norm of the whole tensor) and ``name_v`` (the direction), and
    recompute ``name = g * v / ||v||`` before every forward. Deprecated in torch (a
    FutureWarning) in favour of :func:`darklib.nn.utils.parametrizations.weight_norm`."""
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: T_module, name: str = "weight") -> T_module:
    """Undo :func:`weight_norm`: ``name`` is a parameter again, with the current value."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module}")


# ------------------------------------------------------------------ spectral norm
class SpectralNorm:
    """The forward pre-hook of :func:`spectral_norm`: ``name = name_orig / sigma``."""

    _version: int = 1

    def __init__(
        self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12
    ) -> None:
        self.name = name
        self.dim = dim
        if n_power_iterations <= 0:
            raise ValueError(
                "Expected n_power_iterations to be positive, but got "
                f"n_power_iterations={n_power_iterations}"
            )
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        mat = weight
        if self.dim != 0:
            mat = mat.permute(self.dim, *[d for d in range(mat.ndim) if d != self.dim])
        return mat.reshape(mat.shape[0], -1)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            # torch's order here: v <- W^T u / ||.||, then u <- W v / ||.||, in place
            w = weight_mat.array
            with no_grad():
                for _ in range(self.n_power_iterations):
                    _normalize_(v, Tensor._wrap(w.T @ u.array), self.eps)
                    _normalize_(u, Tensor._wrap(w @ v.array), self.eps)
        u, v = u.detach().clone(), v.detach().clone()
        sigma = (u * weight_mat.mv(v)).sum()
        return weight / sigma

    def remove(self, module: Module) -> None:
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module, module.training))

    def _solve_v_and_rescale(self, weight_mat: Tensor, u: Tensor, target_sigma: Any) -> Tensor:
        # the v with u^T W v = target_sigma (checkpoints saved before v was a buffer)
        w, ua = weight_mat.array, u.array
        xp = get_xp(w)
        v = xp.linalg.pinv(w.T @ w) @ w.T @ ua
        v = v * (target_sigma / (ua @ (w @ v)))
        return Tensor._wrap(v.astype(w.dtype, copy=False))

    @staticmethod
    def apply(
        module: Module, name: str, n_power_iterations: int, dim: int, eps: float
    ) -> SpectralNorm:
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(
                    f"Cannot register two spectral_norm hooks on the same parameter {name}"
                )
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters.get(name)
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        with no_grad():
            h, w = (int(n) for n in fn.reshape_weight_to_matrix(weight).shape)
            u = randn(h, dtype=weight.dtype, device=weight.device)
            v = randn(w, dtype=weight.dtype, device=weight.device)
            _normalize_(u, u, fn.eps)
            _normalize_(v, v, fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        setattr(module, fn.name, weight.detach())
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        module._register_state_dict_hook(SpectralNormStateDictHook(fn))
        module._register_load_state_dict_pre_hook(SpectralNormLoadStateDictPreHook(fn))
        return fn


class SpectralNormLoadStateDictPreHook:
    """Loads checkpoints of version 0 (``weight`` and ``weight_orig`` saved, no
    ``weight_v``): v is solved from them."""

    def __init__(self, fn: SpectralNorm) -> None:
        self.fn = fn

    def __call__(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list,
        unexpected_keys: list,
        error_msgs: list,
    ) -> None:
        fn = self.fn
        version = local_metadata.get("spectral_norm", {}).get(fn.name + ".version", None)
        if version is not None and version >= 1:
            return
        weight_key = prefix + fn.name
        if (
            version is None
            and all(weight_key + s in state_dict for s in ("_orig", "_u", "_v"))
            and weight_key not in state_dict
        ):
            return
        has_missing_keys = False
        for suffix in ("_orig", "", "_u"):
            if weight_key + suffix not in state_dict:
                has_missing_keys = True
                if strict:
                    missing_keys.append(weight_key + suffix)
        if has_missing_keys:
            return
        with no_grad():
            weight_orig = _as_tensor(state_dict[weight_key + "_orig"])
            weight = _as_tensor(state_dict.pop(weight_key))
            sigma = float((weight_orig.array / weight.array).mean())
            weight_mat = fn.reshape_weight_to_matrix(weight_orig)
            u = _as_tensor(state_dict[weight_key + "_u"])
            state_dict[weight_key + "_v"] = fn._solve_v_and_rescale(weight_mat, u, sigma)


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


class SpectralNormStateDictHook:
    """Records the spectral norm's version in the state_dict's metadata, as torch."""

    def __init__(self, fn: SpectralNorm) -> None:
        self.fn = fn

    def __call__(self, module: Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
        meta = local_metadata.setdefault("spectral_norm", {})
        key = self.fn.name + ".version"
        if key in meta:
            raise RuntimeError(f"Unexpected key in metadata['spectral_norm']: {key}")
        meta[key] = self.fn._version


def spectral_norm(
    module: T_module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> T_module:
    """Divide parameter ``name`` by its spectral norm before every forward (Miyato et al.
    2018). The parameter becomes ``name_orig``; buffers ``name_u`` and ``name_v`` hold the
    power iteration's vectors, updated in place by ``n_power_iterations`` steps per forward
    in training mode only (no iteration at registration, unlike the parametrization).

    Args:
        module: the module.
        name: the weight's name. Default: ``"weight"``.
        n_power_iterations: power iterations per forward in training mode. Default: 1.
        eps: floor of the norms in the normalisations. Default: 1e-12.
        dim: the dimension of the output channels. Default: 0, 1 for ConvTranspose.
    """
    if dim is None:
        dim = 1 if _is_conv_transpose(module) else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: T_module, name: str = "weight") -> T_module:
    """Undo :func:`spectral_norm`: ``name`` is a parameter again, holding the normalised
    value (computed with the current u and v, no iteration)."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            break
    else:
        raise ValueError(f"spectral_norm of '{name}' not found in {module}")
    for k, hook in module._state_dict_hooks.items():
        if isinstance(hook, SpectralNormStateDictHook) and hook.fn.name == name:
            del module._state_dict_hooks[k]
            break
    for k, hook in module._load_state_dict_pre_hooks.items():
        h = getattr(hook, "hook", hook)  # darklib wraps load pre-hooks
        if isinstance(h, SpectralNormLoadStateDictPreHook) and h.fn.name == name:
            del module._load_state_dict_pre_hooks[k]
            break
    return module
