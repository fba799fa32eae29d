"""Shared pytest set-up: offscreen Qt, deterministic seeds, device parametrisation."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

import darklib as dl


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
