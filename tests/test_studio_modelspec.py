"""Model specs: shape inference and parameter counts against torch, errors per row, building."""

import pytest

from studio.modelspec import expected_state_shapes, infer
from studio.network import build_model, count_parameters
from studio.project import ModelSpec, ProjectError, load_project, spec_from_dict

torch = pytest.importorskip("torch")


def _spec(input_shape, layers):
    return ModelSpec.model_validate({"input_shape": input_shape, "layers": layers})


CASES = [
    (
        [1, 28, 28],
        [
            {"name": "f", "type": "Flatten"},
            {"name": "l", "type": "Linear", "args": {"out_features": 7}},
        ],
    ),
    (
        [3, 17, 15],
        [
            {
                "name": "c",
                "type": "Conv2d",
                "args": {
                    "out_channels": 6,
                    "kernel_size": [3, 5],
                    "stride": 2,
                    "padding": [1, 2],
                    "dilation": 1,
                },
            },
            {"name": "b", "type": "BatchNorm2d"},
            {
                "name": "p",
                "type": "MaxPool2d",
                "args": {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
            },
            {"name": "a", "type": "AvgPool2d", "args": {"kernel_size": 2}},
            {"name": "g", "type": "AdaptiveAvgPool2d", "args": {"output_size": [2, 3]}},
            {"name": "f", "type": "Flatten"},
            {"name": "ln", "type": "LayerNorm", "args": {"normalized_shape": 36}},
            {"name": "l", "type": "Linear", "args": {"out_features": 4, "bias": False}},
        ],
    ),
    (
        [4, 9, 9],
        [
            {
                "name": "c1",
                "type": "Conv2d",
                "args": {"out_channels": 8, "kernel_size": 3, "padding": "same", "groups": 2},
            },
            {"name": "gn", "type": "GroupNorm", "args": {"num_groups": 4}},
            {
                "name": "c2",
                "type": "Conv2d",
                "args": {"out_channels": 4, "kernel_size": 1},
                "inputs": ["input"],
            },
            {"name": "cat", "type": "concat", "inputs": ["gn", "c2"]},
            {
                "name": "t",
                "type": "ConvTranspose2d",
                "args": {
                    "out_channels": 4,
                    "kernel_size": 3,
                    "stride": 2,
                    "padding": 1,
                    "output_padding": 1,
                },
            },
            {"name": "u", "type": "Upsample", "args": {"scale_factor": 0.5}},
            {"name": "sum", "type": "add", "inputs": ["u", "input"]},
        ],
    ),
]


def _torch_model(rep):
    mods = {}
    for li in rep.layers:
        if li.type in ("add", "concat"):
            mods[li.name] = None
        else:
            mods[li.name] = getattr(torch.nn, li.type)(**li.resolved)
    return mods


@pytest.mark.parametrize("case", range(len(CASES)))
def test_infer_matches_torch(case):
    spec = _spec(*CASES[case])
    rep = infer(spec)
    assert rep.ok, rep.first_error()
    mods = _torch_model(rep)
    x = torch.zeros(2, *spec.input_shape)
    values = {"input": x}
    for li in rep.layers:
        args = [values[n] for n in li.inputs]
        if li.type == "add":
            out = args[0] + args[1]
        elif li.type == "concat":
            out = torch.cat(args, dim=li.resolved["dim"])
        else:
            out = mods[li.name](*args)
            sd = mods[li.name].state_dict()
            assert {k: tuple(v.shape) for k, v in sd.items()} == {
                k: tuple(s) for k, (s, _) in li.state.items()
            }, li.name
            assert li.params == sum(p.numel() for p in mods[li.name].parameters())
        values[li.name] = out
        assert tuple(out.shape[1:]) == li.out_shape, li.name


def test_errors_mark_the_offending_row():
    spec = _spec(
        [1, 28, 28],
        [
            {"name": "l", "type": "Linear", "args": {"in_features": 10, "out_features": 5}},
            {"name": "r", "type": "ReLU"},
        ],
    )
    rep = infer(spec)
    assert "expects 10 input features, got 28" in rep.layers[0].error
    assert rep.layers[1].blocked and rep.layers[1].error is None
    assert not rep.ok
    spec = _spec(
        [1, 4, 4], [{"name": "c", "type": "Conv2d", "args": {"out_channels": 2, "kernel_size": 5}}]
    )
    assert "too small" in infer(spec).layers[0].error
    spec = _spec([3], [{"name": "c", "type": "Linear", "args": {"out_feature": 2}}])
    assert "no argument 'out_feature'" in infer(spec).layers[0].error
    spec = _spec([3], [{"name": "c", "type": "add", "inputs": ["input", "nope"]}])
    assert "'nope' is not an earlier layer" in infer(spec).layers[0].error


def test_unknown_type_and_bad_names_rejected_by_schema():
    base = {"model": {"input_shape": [3], "layers": [{"name": "x", "type": "Linearr"}]}}
    with pytest.raises(ProjectError, match="unknown layer type 'Linearr'"):
        spec_from_dict(base)
    base["model"]["layers"] = [{"name": "a.b", "type": "ReLU"}]
    with pytest.raises(ProjectError, match="must be an identifier"):
        spec_from_dict(base)
    base["model"]["layers"] = [{"name": "a", "type": "ReLU"}, {"name": "a", "type": "ReLU"}]
    with pytest.raises(ProjectError, match="duplicate"):
        spec_from_dict(base)


@pytest.mark.parametrize("path", ["projects/glyphs_mlp.json", "projects/objects_cnn.json"])
def test_samples_build_with_darklib(path):
    spec = load_project(path).spec
    rep = infer(spec.model)
    assert rep.ok and rep.output_shape == (10,)
    try:
        model = build_model(spec.model)
    except Exception as e:  # darklib.nn still landing
        pytest.skip(f"darklib cannot build it yet: {e}")
    assert count_parameters(model) == rep.total_params
    sd = model.state_dict()
    exp = expected_state_shapes(spec.model)
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: tuple(v) for k, v in exp.items()}


@pytest.mark.parametrize(
    "args, needle",
    [
        ({"out_channels": -4, "kernel_size": 3}, "out_channels must be a positive integer, got -4"),
        ({"out_channels": 0, "kernel_size": 3}, "out_channels must be a positive integer, got 0"),
        ({"out_channels": 4, "kernel_size": 3, "bias": "maybe"}, "bias must be true or false"),
        ({"out_channels": 4, "kernel_size": 3, "stride": 0}, "stride must be a positive integer"),
        ({"out_channels": 4, "kernel_size": 0}, "kernel_size must be a positive integer"),
        ({"out_channels": 4, "kernel_size": 3, "padding": -1}, "padding must be an integer >= 0"),
        ({"out_channels": True, "kernel_size": 3}, "out_channels must be an integer, not True"),
    ],
)
def test_impossible_arguments_are_errors_of_their_row(args, needle):
    spec = _spec(
        [3, 8, 8],
        [
            {"name": "r", "type": "ReLU"},
            {"name": "c", "type": "Conv2d", "args": args},
        ],
    )
    rep = infer(spec)
    assert not rep.ok and needle in rep.layers[1].error
    assert rep.first_error().startswith("row 2 'c' (Conv2d): ")  # numbered as the table


def test_dropout_probability_and_model_size_are_checked():
    spec = _spec([4], [{"name": "d", "type": "Dropout", "args": {"p": 5}}])
    assert "must lie in [0, 1], got 5" in infer(spec).layers[0].error
    huge = _spec(
        [3, 32, 32],
        [
            {"name": "f", "type": "Flatten"},
            {"name": "l", "type": "Linear", "args": {"out_features": 10_000_000_000}},
        ],
    )
    rep = infer(huge)
    assert not rep.ok and "GB as float32" in rep.layers[1].error
    assert "over the 2.0 GB limit" in rep.layers[1].error
    with pytest.raises(ValueError, match="GB"):
        build_model(huge)  # refused before anything is allocated


@pytest.mark.parametrize(
    "row, needle",
    [
        ({"type": "LeakyReLU", "args": {"negative_slope": "x"}}, "negative_slope must be a number"),
        ({"type": "ELU", "args": {"alpha": "x"}}, "alpha must be a number, not 'x'"),
        ({"type": "PReLU", "args": {"init": [1]}}, "init must be a number"),
        ({"type": "Softmax", "args": {"dim": 5}}, "dim 5 is out of range for its 4-D input"),
        ({"type": "LogSoftmax", "args": {"dim": -9}}, "use a dim from -4 to 3"),
        (
            {
                "type": "Conv2d",
                "args": {
                    "out_channels": 2,
                    "kernel_size": 3,
                    "padding": 40,
                    "padding_mode": "reflect",
                },
            },
            "padding_mode='reflect' needs padding smaller than the input size: padding 40",
        ),
        (
            {
                "type": "Conv2d",
                "args": {
                    "out_channels": 2,
                    "kernel_size": 3,
                    "padding": 9,
                    "padding_mode": "circular",
                },
            },
            "padding_mode='circular' needs padding at most the input size",
        ),
        (
            {
                "type": "ConvTranspose2d",
                "args": {"out_channels": 2, "kernel_size": 3, "output_padding": 5},
            },
            "output_padding 5 must be smaller than the stride (1) or the dilation (1)",
        ),
    ],
)
def test_layer_arguments_that_would_fail_in_the_run_are_row_errors(row, needle):
    spec = _spec([3, 8, 8], [{"name": "x", **row}])
    rep = infer(spec)
    assert not rep.ok and needle in rep.layers[0].error, rep.layers[0].error


@pytest.mark.parametrize(
    "row",
    [
        {"type": "LeakyReLU", "args": {"negative_slope": 0}},
        {"type": "Softmax", "args": {"dim": -4}},
        {"type": "LogSoftmax", "args": {"dim": 3}},
        {
            "type": "Conv2d",
            "args": {"out_channels": 2, "kernel_size": 3, "padding": 7, "padding_mode": "reflect"},
        },
        {
            "type": "Conv2d",
            "args": {"out_channels": 2, "kernel_size": 3, "padding": 8, "padding_mode": "circular"},
        },
        {
            "type": "Conv2d",
            "args": {
                "out_channels": 2,
                "kernel_size": 3,
                "padding": 20,
                "padding_mode": "replicate",
            },
        },
        {
            "type": "ConvTranspose2d",
            "args": {"out_channels": 2, "kernel_size": 3, "stride": 2, "output_padding": 1},
        },
    ],
)
def test_layer_arguments_at_torchs_limits_are_valid_and_build(row):
    spec = _spec([3, 8, 8], [{"name": "x", **row}])
    rep = infer(spec)
    assert rep.ok, rep.first_error()
    dl = pytest.importorskip("darklib")
    model = build_model(spec)
    assert tuple(model(dl.zeros(1, 3, 8, 8)).shape[1:]) == rep.output_shape
