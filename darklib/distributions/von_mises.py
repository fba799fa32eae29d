"""The von Mises distribution: a normal-like distribution of angles on the circle."""

from __future__ import annotations

import math
from typing import Any

import darklib as dl
from darklib.distributions import constraints
from darklib.distributions.distribution import Distribution
from darklib.distributions.utils import as_float, standard_uniform
from darklib.tensor import Tensor

__all__ = ["VonMises"]


def _log_i0(x: Tensor) -> Tensor:
    """log I0(x) for x >= 0, without overflow (I0(x) = i0e(x) e^x)."""
    return dl.log(dl.special.i0e(x)) + x


class VonMises(Distribution):
    """Density exp(concentration cos(x - loc)) / (2 pi I0(concentration)) over angles;
    ``loc`` and values are any real numbers, read modulo 2 pi; draws lie in [-pi, pi).

    The mean and variance are the circular ones: ``loc`` and 1 - I1(k) / I0(k).
    """

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False
    loc: Tensor
    concentration: Tensor

    def __init__(self, loc: Any, concentration: Any, validate_args: bool | None = None):
        batch_shape = self._set_params(loc=loc, concentration=concentration)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: Any, _instance: Any = None) -> VonMises:
        return self._expanded(
            batch_shape, _instance, VonMises, loc=self.loc, concentration=self.concentration
        )

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        k = self.concentration
        return 1 - dl.special.i1e(k) / dl.special.i0e(k)

    def log_prob(self, value: Any) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float(value, self.loc)
        k = self.concentration
        return k * dl.cos(value - self.loc) - math.log(2 * math.pi) - _log_i0(k)

    def sample(self, sample_shape: Any = ()) -> Tensor:
        """Best and Fisher's (1979) rejection sampler (a wrapped Cauchy envelope), in
        float64 whatever the parameters' dtype (tiny concentrations need it)."""
        shape = tuple(self._extended_shape(sample_shape))
        with dl.no_grad():
            loc = self.loc.detach().to(dl.float64).expand(shape)
            k = self.concentration.detach().to(dl.float64).expand(shape)
            tau = 1 + dl.sqrt(1 + 4 * k.square())
            rho = (tau - dl.sqrt(2 * tau)) / (2 * k)
            r = dl.where(k < 1e-5, 1 / k + k, (1 + rho.square()) / (2 * rho))
            x = dl.zeros(shape, dtype=dl.float64, device=loc.device)
            done = dl.zeros(shape, dtype=dl.bool, device=loc.device)
            while not bool(done.all()):
                u1, u2, u3 = standard_uniform((3, *shape), x).unbind(0)
                z = dl.cos(math.pi * u1)
                f = (1 + r * z) / (r + z)
                c = k * (r - f)
                accept = ((c * (2 - c) - u2) > 0) | (dl.log(c / u2) + 1 - c >= 0)
                accept = accept & ~done
                x = dl.where(accept, dl.sign(u3 - 0.5) * dl.acos(f.clamp(-1.0, 1.0)), x)
                done = done | accept
            angle = dl.remainder(x + math.pi + loc, 2 * math.pi) - math.pi
            return angle.to(self.loc.dtype)
