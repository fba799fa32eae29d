"""Shared pytest set-up: offscreen Qt, deterministic seeds, device parametrisation."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

import darklib as dl


@pytest.fixture(autouse=True)
def _seed():
    dl.manual_seed(0)
    yield
