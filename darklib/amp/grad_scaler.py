"""Dynamic loss scaling, as ``torch.amp.GradScaler``.

A float16 gradient underflows to zero below about 6e-8; multiplying the loss by a large
factor (65536 to start) before backward keeps the gradients representable, and dividing
them by it before the optimizer step gives the true values. When a step's gradients
overflow (inf or NaN) the step is skipped and the factor halved; after ``growth_interval``
clean steps it doubles.

    scaler = dl.amp.GradScaler("cpu")        # or "cuda"
    scaler.scale(loss).backward()
    scaler.step(optimizer)                   # unscales, then steps unless inf/NaN
    scaler.update()
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

from darklib.backend import as_device, get_xp
from darklib.dtypes import float16
from darklib.errors import InvalidType, InvalidValue
from darklib.grad_mode import no_grad
from darklib.tensor import Tensor

_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


class GradScaler:
    """Scale the loss, unscale the gradients, skip steps whose gradients overflowed.

    Args:
        device: where the model trains ('cuda' by default, as torch; without a GPU the
            scaler warns and disables itself, as torch's); 'cpu' works everywhere.
        init_scale: the first scale factor.
        growth_factor, backoff_factor: the factor's change after ``growth_interval``
            clean steps, and after an overflow.
        enabled: False makes every method a pass-through (scale returns its input).
    """

    def __init__(
        self,
        device: str = "cuda",
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        self._device = as_device(device).type
        if enabled and self._device == "cuda":
            from darklib import cuda

            if not cuda.is_available():
                warnings.warn(
                    "darklib.amp.GradScaler is enabled, but CUDA is not available.  Disabling.",
                    UserWarning,
                    stacklevel=2,
                )
                enabled = False
        if growth_factor <= 1.0:
            raise InvalidValue(f"GradScaler: growth_factor must be > 1.0, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise InvalidValue(
                f"GradScaler: backoff_factor must be in (0, 1), got {backoff_factor}"
            )
        if not isinstance(growth_interval, int) or growth_interval <= 0:
            raise InvalidValue(
                f"GradScaler: growth_interval must be a positive int, got {growth_interval!r}"
            )
        self._enabled = bool(enabled)
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = growth_interval
        self._growth_tracker = 0
        self._per_optimizer: dict[int, dict] = {}

    # ------------------------------------------------------------------ the loop

    def scale(self, outputs: Any) -> Any:
        """``outputs`` (a tensor, or nested tuples and lists of them) times the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale  # (in the output's dtype, as torch's 0-d scale)
        if isinstance(outputs, Iterable) and not isinstance(outputs, str | bytes):
            return type(outputs)(self.scale(o) for o in outputs)
        raise InvalidValue("outputs must be a Tensor or an iterable of Tensors")

    def unscale_(self, optimizer: Any) -> None:
        """Divide the optimizer's gradients by the scale, in place, and note whether any is
        inf or NaN (call it before clipping gradients; ``step`` calls it otherwise)."""
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["stage"] == _UNSCALED:
            raise RuntimeError(
                "unscale_() has already been called on this optimizer since the last update()."
            )
        if state["stage"] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv = 1.0 / self._scale
        flags: dict[str, Any] = {}  # per device: any non-finite gradient, kept there
        seen = 0
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    if g.dtype == float16:  # (as torch: keep float32 master weights)
                        raise InvalidValue("Attempting to unscale FP16 gradients.")
                    seen += 1
                    g.mul_(inv)
                    xp = get_xp(g.array)
                    bad = ~xp.isfinite(g.array).all()  # (0-d, on the gradient's device)
                    key = str(g.device)
                    flags[key] = bad if key not in flags else flags[key] | bad
        state["found_inf"] = any(bool(f) for f in flags.values())  # one sync per device
        state["checked"] = seen > 0
        state["stage"] = _UNSCALED

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        """Unscale (unless done), then ``optimizer.step(*args, **kwargs)`` unless a gradient
        was inf or NaN; returns what the step returned (None when skipped)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        state = self._state(optimizer)
        if state["stage"] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] == _READY:
            self.unscale_(optimizer)
        if not state["checked"]:
            raise RuntimeError("No inf checks were recorded for this optimizer.")
        result = None if state["found_inf"] else optimizer.step(*args, **kwargs)
        state["stage"] = _STEPPED
        return result

    def update(self, new_scale: Any = None) -> None:
        """Set the scale for the next iteration: ``new_scale`` if given (a float or a
        one-element tensor), else backed off after an overflow this iteration or grown
        after ``growth_interval`` clean ones."""
        if not self._enabled:
            return
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if new_scale.numel() != 1:
                    raise InvalidValue(
                        f"new_scale should be a float or a 1-element tensor, got shape "
                        f"{tuple(new_scale.shape)}"
                    )
                new_scale = new_scale.item()
            elif not isinstance(new_scale, float):
                raise InvalidType(
                    f"new_scale should be a float or a 1-element tensor, got "
                    f"{type(new_scale).__name__}"
                )
            self._scale = float(new_scale)
        else:
            checked = [s for s in self._per_optimizer.values() if s["checked"]]
            if not checked:
                raise RuntimeError("No inf checks were recorded prior to update.")
            if any(s["found_inf"] for s in checked):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def _state(self, optimizer: Any) -> dict:
        return self._per_optimizer.setdefault(
            id(optimizer), {"stage": _READY, "found_inf": False, "checked": False}
        )

    # ------------------------------------------------------------------ settings

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = int(new_interval)

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict:
        """The scale and its schedule (empty when disabled), as torch's."""
        if not self._enabled:
            return {}
        return {
            "scale": self._scale,
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError(
                "The source state dict is empty, possibly because it was saved from a "
                "disabled instance of GradScaler."
            )
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
