"""darklib.save / darklib.load: safetensors + JSON structure, atomic, interoperable with torch."""

from __future__ import annotations

import io
import json
import math
import os
import pathlib

import numpy as np
import pytest
import safetensors.numpy as stnp
import safetensors.torch as sttorch
import torch

import darklib as dl
from darklib import optim, serialization
from darklib.serialization import SerializationError, load, save
from darklib.tensor import Tensor
from tests.oracle import DEVICES


def _np(t: Tensor) -> np.ndarray:
    return np.asarray(t.detach().cpu().numpy())


def _assert_same(a, b, where="root"):
    """Deep equality with types: tensors by dtype, shape, device and value."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.device == b.device and a.requires_grad == b.requires_grad, where
        np.testing.assert_array_equal(_np(a), _np(b), err_msg=where)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert type(k) is type(next(x for x in b if x == k)), f"{where}: key {k!r}"
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, where


def _nested() -> dict:
    rng = np.random.default_rng(0)
    return {
        "model": {
            "0.weight": dl.tensor(rng.standard_normal((3, 4)).astype(np.float32)),
            "0.bias": dl.tensor(rng.standard_normal(3).astype(np.float32)),
            "bn.num_batches_tracked": dl.tensor(7),
        },
        "optimizer": {
            "state": {0: {"step": dl.tensor(3.0), "exp_avg": dl.ones(3, 4)}, 1: {}},
            "param_groups": [
                {
                    "lr": 1e-3,
                    "betas": (0.9, 0.999),
                    "amsgrad": False,
                    "foreach": None,
                    "params": [0, 1],
                },
            ],
        },
        "epoch": 12,
        "best": float("inf"),
        "worst": float("-inf"),
        "undefined": float("nan"),
        "note": "resumed",
        "flags": [True, False, None],
        "empty": {"d": {}, "l": [], "t": ()},
        "nested": ((1, [2.5, "x"]), {3: (4,)}),
        7: "int key",
        2.5: "float key",
        None: "none key",
        False: "bool key",
        "grad": dl.tensor([1.0, 2.0], requires_grad=True),
        "np": np.arange(6, dtype=np.int32).reshape(2, 3),
    }


def test_nested_round_trip(tmp_path):
    obj = _nested()
    path = tmp_path / "ckpt.safetensors"
    save(obj, path)
    back = load(path)
    _assert_same(back, obj)
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert list(back["optimizer"]["state"]) == [0, 1]
    # loaded tensors own writeable memory: they can be trained in place
    back["model"]["0.weight"].array += 1.0


@pytest.mark.parametrize(
    "dtype",
    [
        "float16",
        "float32",
        "float64",
        "int8",
        "uint8",
        "int16",
        "int32",
        "int64",
        "bool",
        "uint16",
        "uint32",
        "uint64",
    ],
)
def test_dtypes_and_shapes_are_preserved(dtype, tmp_path):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((2, 3, 4)) * 10
    if dtype.startswith("uint"):  # the full range: values beyond the signed type's
        base = np.abs(base) * np.iinfo(dtype).max / 40
    arr = (base > 0) if dtype == "bool" else base.astype(dtype)
    obj = {
        "full": dl.tensor(arr),
        "scalar": dl.tensor(arr.reshape(-1)[0]),
        "empty": dl.tensor(arr[:0]),
        "transposed": Tensor._wrap(arr.transpose(2, 0, 1)),  # not contiguous
    }
    save(obj, tmp_path / "x")
    back = load(tmp_path / "x")
    for key, t in obj.items():
        assert back[key].dtype == getattr(dl, dtype), key
        assert back[key].shape == t.shape, key
        np.testing.assert_array_equal(_np(back[key]), _np(t), err_msg=key)


def test_flat_state_dict_has_torch_key_names_and_loads_into_torch(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    rng = np.random.default_rng(2)
    sd = {
        k: dl.tensor(rng.standard_normal(tuple(v.shape)).astype(np.float32))
        for k, v in model.state_dict().items()
    }
    path = tmp_path / "model.safetensors"
    save(sd, path)
    # darklib -> safetensors.torch -> torch module
    tensors = sttorch.load_file(str(path))
    assert sorted(tensors) == sorted(sd) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    model.load_state_dict(tensors, strict=True)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    expected = np.maximum(x @ _np(sd["0.weight"]).T + _np(sd["0.bias"]), 0)
    expected = expected @ _np(sd["2.weight"]).T + _np(sd["2.bias"])
    np.testing.assert_allclose(model(torch.tensor(x)).detach().numpy(), expected, rtol=1e-5)
    # torch module -> safetensors.torch.save_file -> darklib: a flat dict of tensors
    path2 = tmp_path / "from_torch.safetensors"
    sttorch.save_file(model.state_dict(), str(path2))
    back = load(path2)
    assert isinstance(back, dict) and set(back) == set(sd)
    for k in sd:
        assert back[k].dtype == dl.float32
        np.testing.assert_array_equal(_np(back[k]), _np(sd[k]))


def test_foreign_safetensors_file_with_many_dtypes(tmp_path):
    tensors = {
        "ints": torch.arange(5),
        "mask": torch.tensor([True, False]),
        "half": torch.ones(2, 2, dtype=torch.float16),
        "scalar": torch.tensor(2.5, dtype=torch.float64),
    }
    path = tmp_path / "plain.safetensors"
    sttorch.save_file(tensors, str(path), metadata={"format": "pt"})
    back = load(path)
    assert set(back) == set(tensors)
    for k, t in tensors.items():
        assert str(back[k].dtype).replace("darklib", "torch") == str(t.dtype)
        np.testing.assert_array_equal(_np(back[k]), t.numpy())


def test_unsigned_tensors_written_by_safetensors_torch_load(tmp_path):
    path = tmp_path / "u.safetensors"
    big = torch.tensor([1, 40000, 65535], dtype=torch.uint16)
    sttorch.save_file({"u16": big, "u32": torch.tensor([2**32 - 1], dtype=torch.uint32)}, path)
    back = load(path)
    assert back["u16"].dtype == dl.uint16 and back["u16"].tolist() == [1, 40000, 65535]
    assert back["u32"].dtype == dl.uint32 and back["u32"].tolist() == [2**32 - 1]


def test_saving_into_a_missing_folder_names_that_folder(tmp_path):
    target = tmp_path / "missing" / "x.safetensors"
    with pytest.raises(FileNotFoundError, match="missing") as e:
        save(dl.ones(1), target)
    assert ".tmp" not in str(e.value) and not (tmp_path / "missing").exists()


def test_unsupported_dtype_in_a_foreign_file_is_named(tmp_path):
    path = tmp_path / "bf16.safetensors"
    sttorch.save_file({"w": torch.ones(2, dtype=torch.bfloat16)}, str(path))
    with pytest.raises(SerializationError, match=r"tensor 'w' has dtype BF16") as e:
        load(path)
    assert str(path) in str(e.value)


def test_optimizer_state_dict_round_trip_and_resume(tmp_path):
    rng = np.random.default_rng(3)
    init = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(8)]

    def run(p, opt, gs):
        for g in gs:
            p.grad = dl.tensor(g)
            opt.step()

    ref = dl.tensor(init, requires_grad=True)
    run(ref, optim.Adam([ref], lr=0.05, amsgrad=True), grads)
    p1 = dl.tensor(init, requires_grad=True)
    o1 = optim.Adam([p1], lr=0.05, amsgrad=True)
    run(p1, o1, grads[:4])
    save({"param": p1.detach(), "optimizer": o1.state_dict()}, tmp_path / "opt")
    ckpt = load(tmp_path / "opt")
    assert isinstance(ckpt["optimizer"]["state"][0]["step"], Tensor)
    assert ckpt["optimizer"]["state"][0]["step"].shape == ()
    p2 = dl.tensor(_np(ckpt["param"]), requires_grad=True)
    o2 = optim.Adam([p2])
    o2.load_state_dict(ckpt["optimizer"])
    run(p2, o2, grads[4:])
    np.testing.assert_array_equal(_np(p2), _np(ref))


def test_file_objects_and_path_types(tmp_path):
    obj = {"w": dl.randn(2, 2), "n": 3}
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    _assert_same(load(buf), obj)
    with open(tmp_path / "f.bin", "wb") as fh:
        save(obj, fh)
    with open(tmp_path / "f.bin", "rb") as fh:
        _assert_same(load(fh), obj)
    save(obj, str(tmp_path / "s"))
    _assert_same(load(os.fsencode(tmp_path / "s")), obj)
    _assert_same(load(pathlib.Path(tmp_path / "s")), obj)
    with pytest.raises(TypeError, match="binary mode"):
        load(io.StringIO("text"))
    with pytest.raises(TypeError, match="path or a binary file object"):
        save(obj, 42)


def test_a_single_tensor_and_scalars_round_trip():
    for obj in (dl.arange(5), 3, "s", None, 1.5, [dl.zeros(1), dl.zeros(1)]):
        buf = io.BytesIO()
        save(obj, buf)
        buf.seek(0)
        _assert_same(load(buf), obj)


def test_names_never_collide():
    obj = {"a.b": dl.zeros(1), "a": {"b": dl.ones(1)}}
    buf = io.BytesIO()
    save(obj, buf)
    back = load(io.BytesIO(buf.getvalue()))
    _assert_same(back, obj)
    assert sorted(stnp.load(buf.getvalue())) == ["a.b", "a.b#1"]


def test_unsupported_objects_raise_before_writing(tmp_path):
    path = tmp_path / "keep"
    save({"v": 1}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"type set at key path x\.y"):
        save({"x": {"y": {1, 2}}}, path)
    with pytest.raises(TypeError, match="has a key of type tuple"):
        save({(1, 2): 3}, path)
    with pytest.raises(TypeError, match="dtype complex128"):
        save({"c": np.zeros(2, complex)}, path)
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="circular reference"):
        save(loop, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep"]


def _listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_failure_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    save({"w": dl.zeros(1000)}, path)
    before = path.read_bytes()

    def half_then_fail(fh, data):
        fh.write(data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(serialization, "_write_bytes", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save({"w": dl.ones(1000)}, path)
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["ckpt.safetensors"]  # the temporary file is gone
    monkeypatch.undo()

    def no_fsync(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", no_fsync)
    with pytest.raises(OSError, match="fsync failed"):
        save({"w": dl.ones(1000)}, path)
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["ckpt.safetensors"]
    monkeypatch.undo()
    _assert_same(load(path), {"w": dl.zeros(1000)})


def test_saved_file_follows_the_umask(tmp_path):
    mask = os.umask(0o022)
    try:
        save({"a": 1}, tmp_path / "m")
    finally:
        os.umask(mask)
    if os.name == "posix":
        assert (tmp_path / "m").stat().st_mode & 0o777 == 0o644


def _valid_bytes() -> bytes:
    buf = io.BytesIO()
    save({"w": dl.arange(10, dtype=dl.float32), "meta": {"epoch": 2}}, buf)
    return buf.getvalue()


def _torch_zip_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buf)
    return buf.getvalue()


def _header_len(data: bytes) -> int:
    return int.from_bytes(data[:8], "little")


def _tampered_structure(data: bytes, structure: str) -> bytes:
    n = _header_len(data)
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"]["darklib.structure"] = structure
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + data[8 + n :]


def _garble_header(data: bytes) -> bytes:
    n = _header_len(data)
    return data[:8] + b"{" + b"\x00" * (n - 1) + data[8 + n :]


BAD_FILES = {
    "empty": (lambda d: b"", "not a darklib/safetensors file"),
    "text": (lambda d: b"hello, this is not a tensor file at all\n" * 3, "bad header"),
    "torch-zip": (lambda d: _torch_zip_bytes(), "looks like a PyTorch torch.save"),
    "pickle": (lambda d: b"\x80\x04\x95" + b"\0" * 20, "never unpickles"),
    "cut-in-header": (lambda d: d[:40], "bad header"),
    "truncated-data": (lambda d: d[:-7], "truncated or corrupt"),
    "extra-bytes": (lambda d: d + b"\0" * 8, "truncated or corrupt"),
    "garbled-json": (_garble_header, "bad header"),
    "bad-structure": (lambda d: _tampered_structure(d, "{not json"), "structure metadata"),
    "missing-tensor": (lambda d: _tampered_structure(d, '{"t":"nope"}'), "missing tensor"),
    "odd-structure": (lambda d: _tampered_structure(d, '{"zz":1}'), "malformed structure"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_files_raise_a_clear_error_and_stay_unchanged(kind, tmp_path):
    make, msg = BAD_FILES[kind]
    data = make(_valid_bytes())
    path = tmp_path / f"{kind}.pt"
    path.write_bytes(data)
    with pytest.raises(SerializationError, match=msg) as e:
        load(path)
    assert str(e.value).startswith(f"darklib.load: {path}")
    assert path.read_bytes() == data
    with pytest.raises(SerializationError, match=msg):
        load(io.BytesIO(data))


def test_newer_format_version_is_refused(tmp_path):
    data = stnp.save(
        {"w": np.zeros(1, np.float32)},
        metadata={"format": "darklib", "darklib.version": "99", "darklib.structure": "1"},
    )
    with pytest.raises(SerializationError, match="newer darklib"):
        load(io.BytesIO(data))


def _cuda_file() -> bytes:
    """A darklib file whose tensor was saved from cuda:0 (crafted, so it runs anywhere)."""
    structure = json.dumps({"m": [["w", {"t": "w", "d": "cuda:0"}]]})
    return stnp.save(
        {"w": np.arange(3, dtype=np.float32)},
        metadata={"format": "darklib", "darklib.version": "1", "darklib.structure": structure},
    )


def test_map_location():
    data = _cuda_file()
    for loc in ("cpu", dl.device("cpu"), {"cuda:0": "cpu"}, {"cuda": "cpu"}):
        back = load(io.BytesIO(data), map_location=loc)
        assert back["w"].device == dl.device("cpu")
        np.testing.assert_array_equal(_np(back["w"]), [0, 1, 2])
    # torch's map_location(storage, location): the tensor as loaded on the CPU, the saved
    # device's name; what it returns is used (None: the saved device)
    seen = []
    back = load(io.BytesIO(data), map_location=lambda t, loc: seen.append(loc) or t)
    assert seen == ["cuda:0"] and back["w"].device == dl.device("cpu")
    doubled = load(io.BytesIO(data), map_location=lambda t, loc: t * 2)
    np.testing.assert_array_equal(_np(doubled["w"]), [0, 2, 4])
    with pytest.raises(TypeError, match=r"map_location\(tensor, location\) must return a Tensor"):
        load(io.BytesIO(data), map_location=lambda t, loc: "cpu")
    if not dl.cuda.is_available():
        with pytest.raises(RuntimeError, match="map_location='cpu'"):
            load(io.BytesIO(data), map_location=lambda t, loc: None)
        with pytest.raises(RuntimeError, match="map_location='cpu'"):
            load(io.BytesIO(data))
        with pytest.raises(RuntimeError, match="CUDA"):
            load(io.BytesIO(_valid_bytes()), map_location="cuda")


@pytest.mark.parametrize("device", DEVICES)
def test_device_round_trip(device, tmp_path):
    obj = {"w": dl.randn(3, 2, device=device), "i": dl.arange(4, device=device)}
    save(obj, tmp_path / "d")
    back = load(tmp_path / "d")
    _assert_same(back, obj)
    moved = load(tmp_path / "d", map_location="cpu")
    assert all(t.device == dl.device("cpu") for t in moved.values())
    np.testing.assert_array_equal(_np(moved["w"]), _np(obj["w"]))


def test_parameters_load_back_as_parameters_like_torch_load():
    from darklib.nn import Parameter

    p = Parameter(dl.ones(2))
    frozen = Parameter(dl.zeros(1), requires_grad=False)
    buf = io.BytesIO()
    save({"p": p, "frozen": frozen, "t": dl.ones(1)}, buf)
    buf.seek(0)
    out = load(buf)
    assert type(out["p"]) is Parameter and out["p"].requires_grad
    assert type(out["frozen"]) is Parameter and not out["frozen"].requires_grad
    assert type(out["t"]) is dl.Tensor and not out["t"].requires_grad


def test_a_safetensors_header_starting_like_a_pickle_still_loads():
    # the header length's low byte may be 0x80 (a pickle's first byte): not a torch file
    for n in range(60, 90):
        buf = io.BytesIO()
        save({"k" * n: dl.ones(1)}, buf)
        if buf.getvalue()[0] == 0x80:
            buf.seek(0)
            assert list(load(buf)) == ["k" * n]
            return
    raise AssertionError("no header length with low byte 0x80 in the range")


def test_text_mode_files_are_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "t.safetensors"
    dl.save(dl.ones(2), path)
    with open(path) as f, pytest.raises(TypeError, match=r"binary mode \('rb'\)"):
        dl.load(f)
    with open(tmp_path / "u.safetensors", "w") as f, pytest.raises(TypeError, match="'wb'"):
        dl.save(dl.ones(2), f)


def test_dtypes_and_devices_round_trip_and_folders_are_refused(tmp_path):
    ckpt = {"dtype": dl.float16, "device": dl.device("cpu"), "w": dl.ones(2, dtype=dl.float16)}
    save(ckpt, tmp_path / "c.dl")
    back = load(tmp_path / "c.dl")
    assert back["dtype"] is dl.float16 and back["device"] == dl.device("cpu")
    assert back["w"].dtype == back["dtype"]
    with pytest.raises(IsADirectoryError, match="is a folder"):
        save(ckpt, tmp_path)
