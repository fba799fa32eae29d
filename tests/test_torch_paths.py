"""torch's module paths work in darklib (``from torch.nn.modules.batchnorm import _BatchNorm``,
``from torch.optim.adamw import AdamW``, ``from torch.distributions.beta import Beta``), and
``torch.nn.modules.utils``'s helpers behave as torch's."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections import OrderedDict

import pytest

import darklib as dl
from darklib import _torch_paths

TORCH_PATHS = [
    f"{prefix}.{name}" for prefix, (_, names) in _torch_paths.PATHS.items() for name in names
]


def _torch_name(path: str) -> str:
    return path.replace("darklib", "torch", 1)


@pytest.mark.parametrize("path", TORCH_PATHS)
def test_every_name_torch_defines_there_that_darklib_has_imports_from_the_same_path(path):
    tmod = importlib.import_module(_torch_name(path))
    dmod = importlib.import_module(path)
    home = importlib.import_module(path.rsplit(".", 1)[0].replace(".modules", ""))
    defined = [
        n
        for n, v in vars(tmod).items()
        if (inspect.isclass(v) or inspect.isfunction(v)) and v.__module__ == tmod.__name__
    ]
    assert defined, f"{_torch_name(path)} defines nothing: the test reads the wrong module"
    files = [m for k, m in sorted(sys.modules.items()) if k.startswith(home.__name__ + ".")]
    found = 0
    for name in defined:
        if not name.startswith("_") and hasattr(home, name):
            assert getattr(dmod, name) is getattr(home, name), (path, name)
            found += 1
        elif inspect.isclass(vars(tmod)[name]):  # a class darklib keeps in one of its files
            ours = [vars(m)[name] for m in files if inspect.isclass(vars(m).get(name))]
            if ours:
                assert getattr(dmod, name) is ours[0], (path, name)
                found += 1
    # (torch's utils modules define private helpers only; all others show darklib's names)
    assert found or all(n.startswith("_") for n in defined), (path, defined)


# torch's switches for its multithreaded engine and gradient strides: darklib's backward
# runs on the calling thread and accumulates contiguous gradients, so it has neither
ABSENT = {
    "darklib.autograd.grad_mode": ["set_multithreading_enabled", "enforce_grad_layout_policy"]
}


@pytest.mark.parametrize("path", list(_torch_paths.MODULES))
def test_paths_that_are_one_darklib_module_have_all_of_torchs_public_names(path):
    tmod = importlib.import_module(_torch_name(path))
    dmod = importlib.import_module(path)
    assert dmod.__name__ == _torch_paths.MODULES[path]
    public = [
        n
        for n, v in vars(tmod).items()
        if (inspect.isclass(v) or inspect.isfunction(v))
        and v.__module__ == tmod.__name__
        and not n.startswith("_")
    ]
    assert public and [n for n in public if not hasattr(dmod, n)] == ABSENT.get(path, [])


@pytest.mark.parametrize(
    "path, name, make",
    [
        ("darklib.nn.modules.batchnorm", "_BatchNorm", lambda: dl.nn.BatchNorm2d(4)),
        ("darklib.nn.modules.batchnorm", "_NormBase", lambda: dl.nn.BatchNorm1d(4)),
        ("darklib.nn.modules.instancenorm", "_InstanceNorm", lambda: dl.nn.InstanceNorm2d(4)),
        ("darklib.nn.modules.conv", "_ConvNd", lambda: dl.nn.Conv2d(1, 2, 3)),
        ("darklib.nn.modules.loss", "_Loss", dl.nn.MSELoss),
        ("darklib.nn.modules.loss", "_WeightedLoss", dl.nn.CrossEntropyLoss),
        ("darklib.nn.modules.pooling", "_MaxPoolNd", lambda: dl.nn.MaxPool2d(2)),
        ("darklib.nn.modules.dropout", "_DropoutNd", lambda: dl.nn.Dropout2d(0.5)),
        ("darklib.nn.modules.lazy", "LazyModuleMixin", lambda: dl.nn.LazyLinear(3)),
    ],
)
def test_base_classes_are_the_bases_of_the_layers(path, name, make):
    base = getattr(importlib.import_module(path), name)
    assert isinstance(make(), base)


def test_torch_style_imports_of_layers_optimizers_and_distributions():
    from darklib.distributions.beta import Beta
    from darklib.nn.modules import Linear, module
    from darklib.nn.modules.batchnorm import _BatchNorm
    from darklib.nn.utils.clip_grad import clip_grad_norm_
    from darklib.optim.adamw import AdamW

    assert Linear is dl.nn.Linear and module is dl.nn.module
    assert AdamW is dl.optim.AdamW and Beta is dl.distributions.Beta
    assert clip_grad_norm_ is dl.nn.utils.clip_grad_norm_
    # the idiom of weight-decay exclusion: BatchNorm layers found through torch's base class
    net = dl.nn.Sequential(dl.nn.Conv2d(3, 4, 3), dl.nn.BatchNorm2d(4), dl.nn.ReLU())
    assert [type(m).__name__ for m in net.modules() if isinstance(m, _BatchNorm)] == ["BatchNorm2d"]
    assert dl.nn.modules.conv.Conv2d is dl.nn.Conv2d  # attribute access without an import


def test_a_function_named_like_its_torch_module_keeps_the_attribute():
    # as in torch: nn.utils.spectral_norm is the function, the module imports by its path
    sn_module = importlib.import_module("darklib.nn.utils.spectral_norm")
    torch_module = importlib.import_module("torch.nn.utils.spectral_norm")
    assert callable(dl.nn.utils.spectral_norm) and callable(dl.nn.utils.weight_norm)
    assert sn_module.spectral_norm is dl.nn.utils.spectral_norm
    assert callable(torch_module.spectral_norm)
    assert importlib.import_module("torch.nn.utils").spectral_norm is torch_module.spectral_norm


def test_a_name_darklib_lacks_is_a_clear_import_error():
    with pytest.raises(ImportError, match="SparseAdam"):
        from darklib.optim.adamw import SparseAdam  # noqa: F401
    with pytest.raises(AttributeError, match="darklib has no _helper"):
        dl.nn.modules.conv._helper
    # private functions are never taken from darklib's internals (other signatures)
    with pytest.raises(AttributeError):
        dl.nn.modules.conv._pair


@pytest.mark.parametrize("name", ["_single", "_pair", "_triple", "_quadruple"])
@pytest.mark.parametrize("value", [3, (1, 2), [4, 5, 6], range(2)])
def test_ntuple_helpers_match_torch(name, value):
    import darklib.nn.modules.utils as du
    import torch.nn.modules.utils as tu

    assert getattr(du, name)(value) == getattr(tu, name)(value)
    assert getattr(du, name).__name__ == name


def test_reverse_repeat_and_list_with_default_match_torch():
    import darklib.nn.modules.utils as du
    import torch.nn.modules.utils as tu

    for t, n in [((1, 2), 2), ((3,), 3), ((1, 2, 3), 1)]:
        assert du._reverse_repeat_tuple(t, n) == tu._reverse_repeat_tuple(t, n)
    for size, defaults in [((None, 5), [8, 9, 10]), (7, [1, 2]), ([None, None], [2, 3, 4])]:
        assert du._list_with_default(size, defaults) == tu._list_with_default(size, defaults)
    for bad in ([4], [4, 5]):  # as many sizes as the input has dimensions: no batch
        with pytest.raises(ValueError, match="at least 3"):
            tu._list_with_default((1, None), bad)
        with pytest.raises(ValueError, match="at least 3"):
            du._list_with_default((1, None), bad)


def test_consume_prefix_loads_a_data_parallel_checkpoint_into_the_bare_model():
    from darklib.nn.modules.utils import consume_prefix_in_state_dict_if_present

    net = dl.nn.Sequential(dl.nn.Linear(3, 2), dl.nn.ReLU(), dl.nn.Linear(2, 1))
    wrapped = dl.nn.DataParallel(net)
    state = wrapped.state_dict()
    assert all(k.startswith("module.") for k in state)
    consume_prefix_in_state_dict_if_present(state, "module.")
    assert list(state) == list(net.state_dict())
    fresh = dl.nn.Sequential(dl.nn.Linear(3, 2), dl.nn.ReLU(), dl.nn.Linear(2, 1))
    fresh.load_state_dict(state)
    x = dl.randn(4, 3)
    assert dl.equal(fresh(x), net(x))

    # the same keys, in the same order, as torch's helper gives
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present as torch_consume

    keys = ["module.a", "b", "module.c.module.d", "modulex"]
    ours, theirs = OrderedDict((k, 0) for k in keys), OrderedDict((k, 0) for k in keys)
    consume_prefix_in_state_dict_if_present(ours, "module.")
    torch_consume(theirs, "module.")
    assert list(ours) == list(theirs)


@pytest.mark.parametrize(
    "name, why",
    [("bfloat16", "float16"), ("complex64", "complex"), ("fft", "complex"), ("jit", "eagerly")],
)
def test_torch_names_darklib_lacks_say_why(name, why):
    assert not hasattr(dl, name)
    with pytest.raises(AttributeError, match=why):
        getattr(dl, name)
    with pytest.raises(AttributeError, match=r"has no attribute 'nonexistent'$"):
        dl.nonexistent
