"""Random number generators: one seedable stream for the CPU and one per CUDA device.

``dl.manual_seed(s)`` makes every random op reproducible, as in PyTorch (the streams
themselves differ from PyTorch's: only the semantics match).
"""

from __future__ import annotations

import contextlib
import json
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from darklib.backend import _loaded_cupy
from darklib.errors import InvalidType, InvalidValue


def _check_seed(seed: Any) -> int:
    """A seed as a non-negative int below 2**64: a Python or NumPy integer, nothing else."""
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer):
        raise InvalidType(f"manual_seed expected a long, but got {type(seed).__name__}")
    seed = int(seed)
    if not -(2**63) <= seed < 2**64:
        raise InvalidValue(
            f"manual_seed: seed {seed} overflows a 64-bit integer (expected -2**63 <= seed < 2**64)"
        )
    return seed % 2**64


_draws = threading.local()  # .refused: the message a draw raises in this thread, or None


@contextlib.contextmanager
def draws_refused(reason: str | None) -> Iterator[None]:
    """Inside the block, every draw from any generator in this thread raises
    ``RuntimeError(reason)`` (``vmap``'s randomness='error'); None allows them again
    (an inner block that permits draws)."""
    previous = getattr(_draws, "refused", None)
    _draws.refused = reason
    try:
        yield
    finally:
        _draws.refused = previous


_generators: weakref.WeakSet = weakref.WeakSet()  # every Generator alive (fork_all)


class Generator:
    """A seedable source of random numbers (``dl.Generator().manual_seed(0)``)."""

    def __init__(self, device: Any = "cpu"):
        _generators.add(self)
        self._lock = threading.Lock()
        self._seed = int(np.random.SeedSequence().entropy % (2**63))
        self._cpu = np.random.default_rng(self._seed)
        self._gpu: dict[Any, Any] = {}
        self._gpu_seed: int | None = None  # (None: the GPU streams derive from _seed)
        self._forks = 0  # forks since the seed was set (each gives the GPU a new seed)

    def manual_seed(self, seed: int) -> Generator:
        """Seed the generator with an integer in [-2**63, 2**64) (negative seeds wrap to
        their unsigned 64-bit value, as torch's)."""
        seed = _check_seed(seed)
        with self._lock:
            self._seed = seed
            self._cpu = np.random.default_rng(seed)
            self._gpu, self._gpu_seed, self._forks = {}, None, 0
        return self

    def seed(self) -> int:
        """Re-seed from fresh entropy and return the new seed."""
        return self.manual_seed(int(np.random.SeedSequence().entropy % (2**63)))._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> Any:
        """The generator's state as a uint8 tensor (torch's form, to hand back to
        :meth:`set_state` or save): the seed and the CPU stream's state. As torch's
        ``get_rng_state``, it holds the CPU stream only: :meth:`set_state` leaves the GPU
        streams going on where they are (CuPy's generators expose no state)."""
        from darklib.tensor import Tensor

        with self._lock:
            state = {"seed": self._seed, "cpu": self._cpu.bit_generator.state}
        # padded to a fixed length (JSON ignores the trailing spaces), so that states
        # compare and stack as torch's fixed-size ones do
        payload = json.dumps(state).encode().ljust(_STATE_BYTES)
        return Tensor._wrap(np.frombuffer(payload, np.uint8).copy())

    def set_state(self, new_state: Any) -> None:
        """Restore a state that :meth:`get_state` (or ``dl.get_rng_state()``) returned."""
        state = _decode_state(new_state)
        with self._lock:
            self._seed = state["seed"]
            self._cpu = np.random.default_rng(self._seed)
            self._cpu.bit_generator.state = state["cpu"]

    def fork(self) -> dict:
        """A point in the streams to come back to with :meth:`replay` (activation
        checkpointing draws the same dropout masks again, ``vmap(randomness='same')`` the
        same numbers for every entry): the CPU stream's state and, once CuPy is in use, a
        new seed from which the GPU streams restart now and at each replay (CuPy's
        generators expose no state to save). The seed is derived on the host from the
        generator's seed and a fork count: reproducible under ``manual_seed``, no device
        round trip."""
        with self._lock:
            point: dict[str, Any] = {"cpu": self._cpu.bit_generator.state}
            if _loaded_cupy() is not None:
                self._forks += 1
                seq = np.random.SeedSequence([self._seed, self._forks])
                seed = int(seq.generate_state(1, np.uint64)[0] >> 2)
                self._gpu, self._gpu_seed = {}, seed
                point["gpu_seed"] = seed
        return point

    @contextlib.contextmanager
    def replay(self, point: dict) -> Iterator[None]:
        """Inside the block, draw again the numbers drawn after :meth:`fork` returned
        ``point``; after it, the streams go on from where they were before the block."""
        with self._lock:
            kept = (self._cpu, self._gpu, self._gpu_seed)
            cpu = np.random.Generator(type(self._cpu.bit_generator)())
            cpu.bit_generator.state = point["cpu"]
            self._cpu = cpu
            if "gpu_seed" in point:
                self._gpu, self._gpu_seed = {}, point["gpu_seed"]
        try:
            yield
        finally:
            with self._lock:
                self._cpu, self._gpu, self._gpu_seed = kept

    def numpy_rng(self) -> np.random.Generator:
        """The CPU stream, for code that samples numpy arrays directly (data pipelines)."""
        return self._cpu

    def _rng_for(self, xp: Any) -> Any:
        if xp is np:
            return self._cpu
        dev = xp.cuda.Device().id
        rng = self._gpu.get(dev)
        if rng is None:
            base = self._seed if self._gpu_seed is None else self._gpu_seed
            seed = base + 7919 * (dev + 1)
            # Philox: a counter-based stream whose set-up is cheap (XORWOW, CuPy's default,
            # initialises ~270k states per generator; forks and replays make new ones)
            philox = getattr(xp.random, "Philox4x3210", None)
            rng = self._gpu[dev] = (
                xp.random.Generator(philox(seed))
                if philox is not None
                else xp.random.default_rng(seed)
            )
        return rng

    def sample(self, kind: str, xp: Any, shape: tuple, dtype: np.dtype, **kw: Any) -> Any:
        refused = getattr(_draws, "refused", None)
        if refused is not None:
            raise RuntimeError(refused)
        with self._lock:
            rng = self._rng_for(xp)
            if kind == "rand":
                gen_dtype = dtype if dtype in (np.float32, np.float64) else np.float64
                return rng.random(shape, dtype=gen_dtype).astype(dtype, copy=False)
            if kind == "randn":
                gen_dtype = dtype if dtype in (np.float32, np.float64) else np.float64
                return rng.standard_normal(shape, dtype=gen_dtype).astype(dtype, copy=False)
            if kind == "randint":
                wide = np.uint64 if kw["high"] > 2**63 else np.int64  # (uint64's range)
                out = rng.integers(kw["low"], kw["high"], size=shape, dtype=wide)
                return out.astype(dtype, copy=False)
            if kind == "randperm":
                if xp is np:
                    return rng.permutation(shape[0]).astype(dtype, copy=False)
                # CuPy's Generator has no permutation(): the order of uniform keys
                return xp.argsort(rng.random(shape[0], dtype=np.float64)).astype(dtype, copy=False)
            if kind == "uniform":
                return rng.uniform(kw["low"], kw["high"], size=shape).astype(dtype, copy=False)
            if kind == "normal":
                out = rng.standard_normal(shape, dtype=np.float64) * kw["std"] + kw["mean"]
                return out.astype(dtype, copy=False)
            if kind == "bernoulli":
                return (rng.random(shape, dtype=np.float32) < kw["p"]).astype(dtype, copy=False)
            if kind == "poisson":  # (NumPy refuses rates beyond ~9e18: a normal there)
                rate = kw["params"][0]
                big = rate > 1e15
                out = rng.poisson(xp.where(big, 0.0, rate), size=shape).astype(np.float64)
                if bool(big.any()):
                    z = rng.standard_normal(shape, dtype=np.float64)
                    out = xp.where(big, xp.floor(rate + xp.sqrt(rate) * z + 0.5), out)
                return out.astype(dtype, copy=False)
            if kind in ("standard_gamma", "binomial"):
                # elementwise parameters (arrays of ``shape`` on the stream's device)
                out = getattr(rng, kind)(*kw["params"], size=shape)
                return xp.asarray(out).astype(dtype, copy=False)
        raise InvalidValue(f"unknown random kind {kind!r}")


_STATE_BYTES = 512  # (a PCG64 state and seed take under 200)


def fork_all() -> list[tuple[Generator, dict]]:
    """:meth:`Generator.fork` of every generator alive (``vmap(randomness='same')``)."""
    return [(g, g.fork()) for g in list(_generators)]


@contextlib.contextmanager
def replay_all(points: list[tuple[Generator, dict]]) -> Iterator[None]:
    """:meth:`Generator.replay` of each ``(generator, point)`` at once."""
    with contextlib.ExitStack() as stack:
        for g, point in points:
            stack.enter_context(g.replay(point))
        yield


@contextlib.contextmanager
def fork_rng(devices: Any = None, enabled: bool = True, **kwargs: Any) -> Iterator[None]:
    """As ``torch.random.fork_rng``: inside the block, draws go on from the default
    generator's current state; after it, the state is as it was before the block (the
    CPU stream exactly; the GPU streams restart from a seed derived at entry)."""
    if not enabled:
        yield
        return
    gen = default_generator
    with gen.replay(gen.fork()):
        yield


def _decode_state(new_state: Any) -> dict:
    """A state tensor from :meth:`Generator.get_state` as ``{"seed", "cpu"}``, checked."""
    from darklib.tensor import Tensor

    if not isinstance(new_state, Tensor) or new_state.array.dtype != np.uint8:
        kind = new_state.dtype if isinstance(new_state, Tensor) else type(new_state).__name__
        raise InvalidType(
            f"set_state: expected a uint8 tensor from get_state() (a ByteTensor), got {kind}"
        )
    try:
        state = json.loads(bytes(np.asarray(new_state.cpu().numpy()).tobytes()).decode())
        seed, cpu = int(state["seed"]), state["cpu"]
        if cpu["bit_generator"] != "PCG64":
            raise ValueError(cpu["bit_generator"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise InvalidValue(
            f"set_state: this tensor of {new_state.numel()} bytes is not a darklib generator "
            f"state (as get_state() returns): {e}"
        ) from None
    return {"seed": seed, "cpu": cpu}


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> Any:
    """The default generator's state, a uint8 tensor (``dl.set_rng_state`` restores it)."""
    return default_generator.get_state()


def set_rng_state(new_state: Any) -> None:
    default_generator.set_state(new_state)


def resolve(generator: Any, op: str) -> Generator:
    """``generator`` (the default generator for None), refusing anything else."""
    if generator is None:
        return default_generator
    if not isinstance(generator, Generator):
        raise InvalidType(
            f"{op}(): argument 'generator' must be a darklib Generator, not "
            f"{type(generator).__name__}"
        )
    return generator
