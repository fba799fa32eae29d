"""Shared pytest set-up: offscreen Qt, deterministic seeds, device parametrisation."""

import os

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
    dl.manual_seed(0)
    yield


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
