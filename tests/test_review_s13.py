"""Review of session 13's autograd package split and torch module paths: the problems found,
each checked against torch."""

from __future__ import annotations

import importlib
import types
import warnings

import pytest
import torch

import darklib as dl


def test_anomaly_trace_of_an_op_recorded_by_a_create_graph_backward_drops_engine_frames():
    # (as before the split, when the engine was autograd.py: only the user's frames and the
    # op's own ones show)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with dl.autograd.detect_anomaly():
            x = dl.tensor([1.0, 2.0], requires_grad=True)
            (g,) = dl.autograd.grad((x.sin() * x).sum(), x, create_graph=True)
    trace = g.grad_fn.__dict__["_anomaly_trace"]
    assert __file__.rsplit("/", 1)[-1] in trace
    assert "autograd/engine.py" not in trace and "autograd/function.py" not in trace


@pytest.mark.parametrize(
    "path, name",
    [
        ("nn.modules.conv", "Conv2d"),
        ("nn.modules", "Linear"),
        ("optim.adamw", "AdamW"),
        ("distributions.beta", "Beta"),
        ("nn.utils.clip_grad", "clip_grad_norm_"),
        ("autograd.variable", "Variable"),
    ],
)
def test_star_import_from_a_torch_path_brings_its_names_as_torchs_does(path, name):
    for top in ("torch", "darklib"):
        ns: dict = {}
        exec(f"from {top}.{path} import *", ns)
        assert name in ns, (top, path)
        assert not any(isinstance(v, types.ModuleType) for v in ns.values()), (top, path)
    ns = {}
    exec(f"from darklib.{path} import *", ns)
    assert ns[name] is getattr(importlib.import_module(f"darklib.{path}"), name)


def test_a_torch_path_finds_only_classes_of_its_own_package():
    # darklib.optim's swa_utils imports nn's _BatchNorm, and every file imports typing's
    # names: neither is one of that package's classes (torch's paths have neither)
    for path, name in [("optim.adamw", "_BatchNorm"), ("nn.modules.conv", "Iterable")]:
        assert not hasattr(importlib.import_module(f"torch.{path}"), name)
        assert not hasattr(importlib.import_module(f"darklib.{path}"), name), (path, name)
    from darklib.nn.modules.batchnorm import _BatchNorm  # (nn's own still found)

    assert _BatchNorm.__module__.startswith("darklib.nn.")
    assert torch.nn.modules.batchnorm._BatchNorm.__name__ == _BatchNorm.__name__
