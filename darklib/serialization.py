"""``darklib.save`` / ``darklib.load``: safetensors for the tensors, JSON for the structure.

A saved file is a plain safetensors file. Each tensor is named by its path in the saved
structure (``"0.weight"`` for a flat model state dict, ``"state.0.exp_avg"`` inside an
optimizer's), so ``safetensors.torch.load_file`` reads a darklib model state dict with
PyTorch's key names. The nested structure (dicts with str/int keys, lists, tuples, numbers,
strings, bools, None) is stored as JSON in the safetensors metadata. Nothing is pickled and
nothing read from a file is ever executed.

Writes are atomic: a temporary file in the same folder is written, flushed to disk and then
renamed over the target, so a crash or an error mid-write leaves the old file intact.
"""

from __future__ import annotations

import io
import json
import math
import os
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import IO, Any

import numpy as np
import safetensors.numpy as _stnp
from safetensors import SafetensorError, safe_open

from darklib.backend import as_device, device, device_of, to_device, to_numpy
from darklib.dtypes import dtype
from darklib.dtypes import from_numpy_dtype as _from_numpy_dtype
from darklib.tensor import Tensor

__all__ = ["SerializationError", "load", "save"]

FORMAT_VERSION = 1
_KEY_FORMAT = "format"
_KEY_VERSION = "darklib.version"
_KEY_STRUCTURE = "darklib.structure"
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header
_CHUNK = 1 << 26  # bytes per write call

# safetensors dtype names -> numpy dtypes darklib holds; others are reported by name.
_ST_TO_NP = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "U16": np.dtype(np.uint16),
    "U32": np.dtype(np.uint32),
    "U64": np.dtype(np.uint64),
    "I8": np.dtype(np.int8),
    "I16": np.dtype(np.int16),
    "I32": np.dtype(np.int32),
    "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
}
_NP_TO_ST = {v: k for k, v in _ST_TO_NP.items()}
_ST_ITEMSIZE = {
    **{k: v.itemsize for k, v in _ST_TO_NP.items()},
    "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "C64": 8, "C128": 16,
}  # fmt: skip


class SerializationError(RuntimeError):
    """A file that :func:`load` cannot read (not safetensors, truncated, corrupt), or an
    object that :func:`save` cannot write."""


# ---------------------------------------------------------------------------------- save
def save(obj: Any, f: str | os.PathLike | IO[bytes]) -> None:
    """Save tensors and the structure holding them to a safetensors file.

    Args:
        obj: a Tensor, a numpy array, or dicts (str/int keys), lists and tuples nesting them
            with numbers, strings, bools, None, dtypes and devices: a model's or optimizer's
            state dict, or a checkpoint dict holding both.
        f: a path (written atomically) or a binary file object opened for writing.

    Example::

        >>> dl.save({"model": model.state_dict(), "epoch": 3}, "ckpt.safetensors")
        >>> ckpt = dl.load("ckpt.safetensors", map_location="cpu")
    """
    enc = _Encoder()
    structure = enc.encode(obj, [])
    metadata = {
        _KEY_FORMAT: "darklib",
        _KEY_VERSION: str(FORMAT_VERSION),
        _KEY_STRUCTURE: json.dumps(structure, separators=(",", ":"), allow_nan=False),
    }
    data = _stnp.save(enc.arrays, metadata=metadata)
    if hasattr(f, "write") and not isinstance(f, str | bytes | os.PathLike):
        if isinstance(f, io.TextIOBase):
            name = str(getattr(f, "name", "<file object>"))
            raise TypeError(f"darklib.save: {name} must be opened in binary mode ('wb')")
        _write_bytes(f, data)
        return
    try:
        path = os.fspath(f)
    except TypeError:
        raise TypeError(
            f"darklib.save: expected a path or a binary file object, got {type(f).__name__}"
        ) from None
    if os.path.isdir(path):
        raise IsADirectoryError(f"darklib.save: {path} is a folder; give a file path")
    _atomic_write(path, data)


def _write_bytes(fh: Any, data: bytes) -> None:
    """Write all of ``data`` (in chunks, so huge files never need a second full copy)."""
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        fh.write(view[start : start + _CHUNK])


def _atomic_write(path: str | bytes, data: bytes) -> None:
    path = os.fsdecode(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    if not os.path.isdir(folder):  # (the error would name the temporary file)
        raise FileNotFoundError(f"darklib.save: the folder {folder!r} of {path!r} does not exist")
    # os.open with 0o666 lets the umask decide the final permissions, as for a plain open().
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_bytes(fh, data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Encoder:
    """Turn an object into a JSON-able structure, collecting its arrays by path name.

    Nodes: JSON scalars stand for themselves; ``{"t": name}`` a Tensor (plus ``"d"`` for its
    device when not the CPU, ``"g"`` when it requires grad, ``"p"`` for a Parameter),
    ``{"a": name}`` a numpy array, ``{"l": [...]}`` a list, ``{"u": [...]}`` a tuple,
    ``{"m": [[key, value], ...]}`` a dict (keys keep their type and order; ``"o"`` marks an
    OrderedDict), ``{"f": "nan"}`` a non-finite float, ``{"dt": "float32"}`` a dtype,
    ``{"dv": "cuda:0"}`` a device. A tensor met again is written as the
    same node, so that it loads as one shared tensor, as torch.load gives.
    """

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self._active: set[int] = set()
        self._tensors: dict[int, dict] = {}  # id -> node of the tensors already written

    def encode(self, obj: Any, path: list[str]) -> Any:
        if obj is None or isinstance(obj, bool | str):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return _encode_float(obj)
        if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
            return self.encode(obj.item(), path)
        if isinstance(obj, Tensor):
            if id(obj) in self._tensors:
                return self._tensors[id(obj)]
            node: dict[str, Any] = {"t": self._add(path, to_numpy(obj.array))}
            self._tensors[id(obj)] = node
            dev = device_of(obj.array)
            if dev.type != "cpu":
                node["d"] = str(dev)
            if obj.requires_grad:
                node["g"] = 1
            if _is_parameter(obj):
                node["p"] = 1
            return node
        if isinstance(obj, np.ndarray):
            return {"a": self._add(path, obj)}
        if isinstance(obj, dtype):
            return {"dt": obj.name}
        if isinstance(obj, device):
            return {"dv": str(obj)}
        if isinstance(obj, list | tuple | Mapping):
            if id(obj) in self._active:
                raise ValueError(f"darklib.save: circular reference at {_where(path)}")
            self._active.add(id(obj))
            try:
                if isinstance(obj, Mapping):
                    node = {
                        "m": [
                            [_encode_key(k, path), self.encode(v, [*path, _part(k)])]
                            for k, v in obj.items()
                        ]
                    }
                    if isinstance(obj, OrderedDict):
                        node["o"] = 1
                    return node
                items = [self.encode(v, [*path, str(i)]) for i, v in enumerate(obj)]
                return {"u" if isinstance(obj, tuple) else "l": items}
            finally:
                self._active.discard(id(obj))
        hint = ""
        if callable(getattr(obj, "state_dict", None)):  # a model, optimizer or scheduler
            hint = (
                f" A {type(obj).__name__} is saved as its state: dl.save(obj.state_dict(), "
                "path), restored with obj.load_state_dict(dl.load(path)) on a new instance "
                "(darklib never pickles objects: loading them could run any code)."
            )
        raise TypeError(
            f"darklib.save: cannot save an object of type {type(obj).__name__} at {_where(path)}; "
            "save tensors, numpy arrays, numbers, strings, bools, None, dtypes, devices, and "
            f"dicts, lists and tuples of them.{hint}"
        )

    def _add(self, path: list[str], arr: np.ndarray) -> str:
        if arr.dtype.newbyteorder("<") not in _NP_TO_ST:
            raise TypeError(
                f"darklib.save: the array at {_where(path)} has dtype {arr.dtype}, which the "
                f"file format does not hold; use one of {', '.join(map(str, _NP_TO_ST))}"
            )
        base = ".".join(path) if path else "tensor"
        name, n = base, 0
        while name in self.arrays:
            n += 1
            name = f"{base}#{n}"
        self.arrays[name] = np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")
        return name


def _is_parameter(t: Tensor) -> bool:
    from darklib.nn.parameter import Parameter

    return isinstance(t, Parameter)


def _where(path: list[str]) -> str:
    return "the top level" if not path else "key path " + ".".join(path)


def _part(key: Any) -> str:
    return key if isinstance(key, str) else repr(key) if not isinstance(key, int) else str(key)


def _encode_float(x: float) -> Any:
    return float(x) if math.isfinite(x) else {"f": repr(float(x))}


def _encode_key(key: Any, path: list[str]) -> Any:
    if key is None or isinstance(key, bool | str):
        return key
    if isinstance(key, np.generic) and key.dtype.kind in "biuf":
        key = key.item()
    if isinstance(key, int):
        return int(key)
    if isinstance(key, float):
        return _encode_float(key)
    raise TypeError(
        f"darklib.save: a dict at {_where(path)} has a key of type {type(key).__name__}; "
        "keys must be strings, numbers, bools or None"
    )


# ---------------------------------------------------------------------------------- load
def load(
    f: str | os.PathLike | IO[bytes],
    map_location: Any = None,
    *,
    weights_only: bool = True,
    mmap: bool | None = None,
) -> Any:
    """Load an object saved by :func:`save`, or the tensors of any safetensors file.

    A safetensors file without darklib's structure (e.g. from ``safetensors.torch.save_file``)
    loads as a flat dict ``{name: Tensor}``.

    Args:
        f: a path or a binary file object opened for reading.
        map_location: where tensors go: ``'cpu'``, ``'cuda'``, ``'cuda:1'``, a
            :class:`darklib.device`, or a dict mapping saved device names to new ones.
            Default: the device each tensor was saved from.
        weights_only: accepted for PyTorch compatibility; loading never runs code.
        mmap: accepted for PyTorch compatibility (files are read whole).

    Raises:
        SerializationError: the file is not a safetensors file, or is truncated or corrupt.
    """
    del weights_only, mmap
    place = _placement(map_location)
    if hasattr(f, "read") and not isinstance(f, str | bytes | os.PathLike):
        name = str(getattr(f, "name", "<file object>"))
        if isinstance(f, io.TextIOBase):  # (its read() would fail decoding the bytes)
            raise TypeError(f"darklib.load: {name} must be opened in binary mode ('rb')")
        data = f.read()
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"darklib.load: {name} must be opened in binary mode ('rb')")
        data = bytes(data)
        header, meta = _parse_header(data[:8], lambda n: data[8 : 8 + n], len(data), name)
        arrays = _wrap_errors(name, lambda: _stnp.load(data))
    else:
        try:
            path = os.fsdecode(os.fspath(f))
        except TypeError:
            raise TypeError(
                f"darklib.load: expected a path or a binary file object, got {type(f).__name__}"
            ) from None
        name = path
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            header, meta = _parse_header(fh.read(8), fh.read, size, name)

        def read_all() -> dict[str, np.ndarray]:
            with safe_open(path, framework="numpy") as sf:
                return {k: sf.get_tensor(k) for k in header}

        arrays = _wrap_errors(name, read_all)
    if meta is None or meta.get(_KEY_FORMAT) != "darklib" or _KEY_STRUCTURE not in meta:
        order = sorted(header, key=lambda k: (header[k]["data_offsets"][0], k))
        return {k: _to_tensor(arrays[k], None, False, place, name) for k in order}
    version = meta.get(_KEY_VERSION, "1")
    if not version.isdigit() or int(version) > FORMAT_VERSION:
        raise SerializationError(
            f"darklib.load: {name} was written by a newer darklib (format version "
            f"{version}); upgrade darklib to read it"
        )
    try:
        structure = json.loads(meta[_KEY_STRUCTURE])
    except ValueError:
        raise _corrupt(name, "its structure metadata is not valid JSON") from None
    except RecursionError:  # a crafted file nesting its structure thousands deep
        raise _corrupt(name, "its structure metadata is nested too deeply") from None
    try:
        return _decode(structure, arrays, place, name, {})
    except RecursionError:
        raise _corrupt(name, "its structure metadata is nested too deeply") from None


def _wrap_errors(name: str, fn: Any) -> Any:
    try:
        return fn()
    except SafetensorError as e:
        raise _corrupt(name, str(e)) from None


def _bad_header(name: str, why: str) -> SerializationError:
    return SerializationError(
        f"darklib.load: {name} is not a darklib/safetensors file (bad header: {why})"
    )


def _corrupt(name: str, why: str) -> SerializationError:
    return SerializationError(f"darklib.load: {name} is truncated or corrupt ({why})")


def _parse_header(prefix: bytes, read: Any, size: int, name: str) -> tuple[dict, dict | None]:
    """Check a safetensors header against the file size; returns (tensor entries, metadata)."""
    if len(prefix) < 8:
        raise _bad_header(name, f"the file has only {size} bytes")
    n = int.from_bytes(prefix, "little")
    if n < 2 or n > _MAX_HEADER or n > size - 8:
        _refuse_torch_pickle(prefix, name)
        raise _bad_header(name, f"header length {n} does not fit a file of {size} bytes")
    raw = read(n)
    if len(raw) != n or raw[:1] != b"{":
        _refuse_torch_pickle(prefix, name)
        raise _bad_header(name, "no JSON header")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _bad_header(name, "the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _bad_header(name, "the header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is not None and not (
        isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())
    ):
        raise _bad_header(name, "__metadata__ must map strings to strings")
    data_len = size - 8 - n
    spans = []
    for key, info in header.items():
        try:
            dtype, shape = info["dtype"], info["shape"]
            begin, end = info["data_offsets"]
            ok = (
                isinstance(dtype, str)
                and all(isinstance(d, int) and d >= 0 for d in shape)
                and isinstance(begin, int)
                and isinstance(end, int)
                and 0 <= begin <= end
            )
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise _bad_header(name, f"malformed entry for tensor {key!r}")
        if dtype not in _ST_TO_NP:
            if dtype in _ST_ITEMSIZE:
                raise SerializationError(
                    f"darklib.load: {name}: tensor {key!r} has dtype {dtype}, which darklib does "
                    "not support; convert it to float32 (or another supported dtype) first"
                )
            raise _bad_header(name, f"unknown dtype {dtype!r} for tensor {key!r}")
        if end - begin != math.prod(shape) * _ST_ITEMSIZE[dtype]:
            raise _corrupt(name, f"tensor {key!r}: {end - begin} bytes for shape {shape}")
        if end > data_len:
            raise _corrupt(
                name, f"tensor {key!r} needs bytes up to {end}, the file holds {data_len}"
            )
        spans.append((begin, end))
    covered = 0
    for begin, end in sorted(spans):
        if begin != covered:
            raise _corrupt(name, "tensor data does not tile the data section")
        covered = end
    if covered != data_len:
        raise _corrupt(name, f"{data_len - covered} stray bytes after the tensor data")
    return header, meta


def _refuse_torch_pickle(prefix: bytes, name: str) -> None:
    """Name the likely cause when a file that is not safetensors starts like torch.save's."""
    zipped = prefix[:4] == b"PK\x03\x04"  # torch.save's default zip archive
    pickled = prefix[:1] == b"\x80" and prefix[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    if zipped or pickled:
        raise SerializationError(
            f"darklib.load: {name} looks like a PyTorch torch.save() file (a zip or pickle "
            "archive), not a darklib/safetensors file; darklib never unpickles, since "
            "unpickling can run code. Convert it in PyTorch with "
            "safetensors.torch.save_file(torch.load(path), 'weights.safetensors')"
        )


def _placement(map_location: Any) -> Any:
    """``place(array, saved)``: a loaded host array on its target device, given the name of
    the device it was saved from ('cpu', 'cuda:0')."""
    if map_location is None:
        return lambda arr, saved: _move(arr, device(saved), saved)
    if isinstance(map_location, Mapping):
        table = {str(device(k)): as_device(v) for k, v in map_location.items()}
        return lambda arr, saved: _move(arr, table.get(str(device(saved)), device(saved)), saved)
    if callable(map_location) and not isinstance(map_location, device):
        # torch's ``map_location(storage, location)``: here the tensor as loaded on the CPU
        # and its saved device's name; it returns the tensor to use (None: the default)
        def place(arr: np.ndarray, saved: str) -> Any:
            arr = arr if arr.flags.writeable else arr.copy()
            out = map_location(Tensor._wrap(arr), saved)
            if out is None:
                return _move(arr, device(saved), saved)
            if not isinstance(out, Tensor):
                raise _MapLocationError(
                    "darklib.load: map_location(tensor, location) must return a Tensor (or "
                    f"None), got {type(out).__name__}"
                )
            return out.array

        return place
    target = as_device(map_location)
    return lambda arr, saved: _move(arr, target, saved)


class _MapLocationError(TypeError):
    """A map_location function that returned something other than a tensor (the user's
    mistake, not the file's: :func:`_decode` lets it through as it is)."""


def _move(arr: np.ndarray, target: device, saved: str) -> Any:
    if target.type == "cpu":
        return arr
    try:
        return to_device(arr, target)
    except RuntimeError as e:
        raise RuntimeError(f"{e} (saved on {saved}; pass map_location='cpu')") from None


def _to_tensor(arr: np.ndarray, saved: str | None, grad: bool, place: Any, name: str) -> Tensor:
    try:
        placed = place(arr, saved or "cpu")
    except RuntimeError as e:
        raise RuntimeError(f"darklib.load: {name}: {e}") from None
    if placed is arr and not arr.flags.writeable:  # (a view of the file's read-only buffer)
        placed = arr.copy()
    t = Tensor._wrap(placed)
    if grad and arr.dtype.kind == "f":
        t._requires_grad = True
    return t


def _decode(node: Any, arrays: dict[str, np.ndarray], place: Any, name: str, tensors: dict) -> Any:
    """The object a structure node stands for; ``tensors`` holds the tensors made so far by
    array name, so that a tensor saved twice loads as one."""
    if node is None or isinstance(node, bool | int | float | str):
        return node
    if isinstance(node, dict) and len(node) >= 1:
        try:
            if "t" in node:
                if node["t"] in tensors:
                    return tensors[node["t"]]
                t = _to_tensor(arrays[node["t"]], node.get("d"), bool(node.get("g")), place, name)
                if node.get("p"):  # saved as an nn.Parameter: load one, as torch.load does
                    from darklib.nn.parameter import Parameter

                    t = Parameter(t, requires_grad=t.requires_grad)
                tensors[node["t"]] = t
                return t
            if "a" in node:
                arr = arrays[node["a"]]
                return arr if arr.flags.writeable else arr.copy()
            if "l" in node:
                return [_decode(x, arrays, place, name, tensors) for x in node["l"]]
            if "u" in node:
                return tuple(_decode(x, arrays, place, name, tensors) for x in node["u"])
            if "m" in node:
                kind = OrderedDict if node.get("o") else dict
                return kind(
                    (
                        _decode(k, arrays, place, name, tensors),
                        _decode(v, arrays, place, name, tensors),
                    )
                    for k, v in node["m"]
                )
            if "f" in node and node["f"] in ("nan", "inf", "-inf"):
                return float(node["f"])
            if "dt" in node:
                return _from_numpy_dtype(node["dt"])
            if "dv" in node:
                return device(node["dv"])
        except KeyError as e:
            raise _corrupt(name, f"the structure names a missing tensor {e}") from None
        except _MapLocationError:
            raise
        except (TypeError, ValueError) as e:
            raise _corrupt(name, f"malformed structure metadata: {e}") from None
    raise _corrupt(name, f"malformed structure metadata near {str(node)[:80]!r}")
