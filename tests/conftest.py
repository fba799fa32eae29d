"""Shared pytest set-up: offscreen Qt, deterministic seeds, device parametrisation."""

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from hypothesis import settings

import darklib as dl

# every hypothesis test draws the same examples on every run and machine (a suite that
# passes here passes in CI; finding new cases is the fuzz tests' job, with fixed seeds)
settings.register_profile("darklib", derandomize=True, database=None)
settings.load_profile("darklib")


@pytest.fixture(autouse=True)
def _seed():
    """Seeds every test alike; afterwards, a test that left grad mode off or another
    default dtype (a leak that made later, unrelated tests fail) gets them restored and
    fails itself."""
    dl.manual_seed(0)
    yield
    leaks = []
    if not dl.is_grad_enabled():
        dl.set_grad_enabled(True)
        leaks.append("grad mode left off")
    torch = sys.modules.get("torch")
    if torch is not None and not torch.is_grad_enabled():
        torch.set_grad_enabled(True)
        leaks.append("torch's grad mode left off")
    if dl.get_default_dtype() is not dl.float32:
        leaks.append(f"default dtype left at {dl.get_default_dtype()}")
        dl.set_default_dtype(dl.float32)
    if leaks:
        pytest.fail("the test changed global state: " + ", ".join(leaks))


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module of tiny-tensor comparisons (its thread pool costs
    more than it saves there: several times slower on a busy 2-core machine), restored
    afterwards for the other modules."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
