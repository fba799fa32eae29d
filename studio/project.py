"""Project files: the pydantic schema of ``project.json`` and the ``.darkproj`` archive.

A ``.darkproj`` is a zip holding::

    project.json          the spec (this schema): task, data, model, loss, optimizer, training
    weights.safetensors   model state (``model.*``), optimizer state (``optim.*``) and, in the
                          safetensors metadata, the optimizer's non-tensor state and the
                          trainer's position (epoch, step) as JSON
    history.json          every logged metric
    thumbnail.png         a small picture for the gallery (optional)

A bare ``project.json`` opens too (the samples in ``projects/`` are readable JSON). Nothing
here evaluates or unpickles file contents; zip members are size-limited before they are read.
Saves are atomic: a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from studio.modelspec import expected_state_shapes, known_layer_types  # stdlib only

FORMAT = "dark-studio-project"
VERSION = 1
SUFFIX = ".darkproj"

# Limits on what a .darkproj may hold (zip-bomb and garbage guards).
MAX_MEMBERS = 32
MAX_JSON_BYTES = 8 << 20  # project.json
MAX_HISTORY_BYTES = 256 << 20
MAX_THUMBNAIL_BYTES = 4 << 20
MAX_WEIGHTS_BYTES = 4 << 30
MAX_RATIO = 200  # uncompressed / compressed, above which a member is refused
MAX_PROCEDURAL_IMAGES = 200_000

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ProjectError(Exception):
    """A project file that cannot be opened or saved; the message names the file and the problem."""


# --------------------------------------------------------------------------- schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TransformSpec(_Strict):
    """One data transform: a darklib.vision.transforms class name and its keyword arguments."""

    type: str
    args: dict[str, Any] = Field(default_factory=dict)


class DatasetSpec(_Strict):
    """Where the images come from and how they are split and augmented.

    ``source`` is ``"procedural"`` (``name`` picks the generator, nothing is downloaded), or
    a folder ``path`` read by darklib.vision: ``"folder"`` (an ImageFolder tree: one
    sub-folder of images per class), ``"mnist"`` / ``"fashion_mnist"`` (IDX files) or
    ``"cifar10"`` (the binary batches). The validation split is cut from the training files
    (``val_fraction``), except for a folder split as ``train/<class>/...`` beside
    ``test/<class>/...`` (or ``val/``), whose held-out folder is the validation split.
    ``on_error="skip"`` leaves unreadable images of a folder out where they are met (each is
    reported by name) instead of stopping at the first one; the studio's window sets it for
    the folders chosen there.
    """

    source: Literal["procedural", "folder", "mnist", "fashion_mnist", "cifar10"] = "procedural"
    name: str = "glyphs28"
    path: str | None = None
    # procedural images are generated and held in memory: 200,000 of objects32 take about
    # 600 MB and a minute and a half (ten times that could exhaust a machine's memory)
    size: int = Field(12000, ge=10, le=MAX_PROCEDURAL_IMAGES)
    val_fraction: float = Field(0.15, gt=0.0, lt=1.0)
    seed: int = 0
    image_size: list[int] | None = None  # [H, W] to resize folder images to
    transforms: list[TransformSpec] = Field(default_factory=list)
    normalize: bool = True
    on_error: Literal["raise", "skip"] = "raise"

    @model_validator(mode="after")
    def _folder_needs_path(self) -> DatasetSpec:
        if self.source != "procedural" and not self.path:
            raise ValueError(f"a '{self.source}' dataset needs a 'path'")
        return self


class LayerSpec(_Strict):
    """One node of the model graph.

    ``type`` is a darklib.nn module name (``"Conv2d"``) or a merge node (``"add"``,
    ``"concat"``). ``inputs`` names earlier layers (or ``"input"``); when empty the layer
    takes the previous layer's output.
    """

    name: str
    type: str
    args: dict[str, Any] = Field(default_factory=dict)
    inputs: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _NAME_RE.match(v) or v == "input":
            raise ValueError(
                f"layer name {v!r} must be an identifier (letters, digits, _) and not 'input'"
            )
        return v


class ModelSpec(_Strict):
    """The network as a small graph of layers; ``input_shape`` excludes the batch dimension."""

    input_shape: list[int] = Field(default_factory=lambda: [1, 28, 28])
    layers: list[LayerSpec] = Field(default_factory=list)

    @field_validator("input_shape")
    @classmethod
    def _shape_ok(cls, v: list[int]) -> list[int]:
        if not v or any(int(n) <= 0 for n in v):
            raise ValueError(f"input_shape {v} must be a non-empty list of positive sizes")
        return v

    @model_validator(mode="after")
    def _layers_ok(self) -> ModelSpec:
        seen: set[str] = set()
        known = known_layer_types()
        for i, layer in enumerate(self.layers):
            if layer.name in seen:
                raise ValueError(f"layer {i} ('{layer.name}'): duplicate layer name")
            if layer.type not in known:
                raise ValueError(f"layer {i} ('{layer.name}'): unknown layer type {layer.type!r}")
            seen.add(layer.name)
        return self


class LossSpec(_Strict):
    type: str = "CrossEntropyLoss"
    args: dict[str, Any] = Field(default_factory=dict)


class OptimizerSpec(_Strict):
    type: Literal["SGD", "Adam", "AdamW", "RMSprop"] = "Adam"
    lr: float = Field(1e-3, gt=0.0, le=10.0)
    args: dict[str, Any] = Field(default_factory=dict)


class ScheduleSpec(_Strict):
    """Learning-rate schedule: a darklib.optim.lr_scheduler name, stepped once per epoch
    (``OneCycleLR`` once per step), or ``"none"``."""

    type: Literal["none", "StepLR", "CosineAnnealingLR", "ExponentialLR", "OneCycleLR"] = "none"
    args: dict[str, Any] = Field(default_factory=dict)


class TrainingSpec(_Strict):
    epochs: int = Field(3, ge=1, le=100_000)
    batch_size: int = Field(64, ge=1, le=65536)
    device: Literal["cpu", "cuda"] = "cpu"
    num_workers: int = Field(0, ge=0, le=64)
    seed: int = 0
    max_steps_per_epoch: int | None = Field(None, ge=1)
    max_val_batches: int | None = Field(None, ge=1)


class ProjectSpec(_Strict):
    """Everything ``project.json`` holds. Unknown keys are errors (typos surface at once)."""

    format: Literal["dark-studio-project"] = FORMAT
    version: int = VERSION
    name: str = "Untitled"
    description: str = ""
    task: Literal["classification"] = "classification"
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    loss: LossSpec = Field(default_factory=LossSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)

    @field_validator("version")
    @classmethod
    def _version_ok(cls, v: int) -> int:
        if v > VERSION:
            raise ValueError(f"project version {v} is newer than this studio ({VERSION})")
        return v


class HistorySpec(BaseModel):
    """What ``history.json`` holds (written by :class:`studio.trainer.History` and
    ``Session.snapshot``): per-step and per-epoch metric series (a list of numbers, null for
    a missing value, per metric name) and the trainer's bookkeeping (the unfinished epoch's
    sums, the learning-rate schedule's state). Other keys are kept as they are (files of
    newer studios); the known ones must have these types."""

    model_config = ConfigDict(extra="allow")

    steps: dict[str, list[float | None]] = Field(default_factory=dict)
    epochs: dict[str, list[float | None]] = Field(default_factory=dict)
    epoch_sums: dict[str, Any] | None = Field(None, alias="_epoch_sums")
    scheduler: dict[str, Any] | None = Field(None, alias="_scheduler")
    schedule_type: str | None = Field(None, alias="_schedule_type")


def history_from_dict(data: Any, where: str = "history.json") -> dict[str, Any]:
    """Validate a decoded ``history.json`` (raises :class:`ProjectError` naming ``where`` and
    the field); returns it with the metric series as floats (or None)."""
    if not isinstance(data, dict):
        raise ProjectError(
            f"{where}: the top level must be a JSON object, not {type(data).__name__}"
        )
    try:
        h = HistorySpec.model_validate(data)
    except ValidationError as e:
        raise ProjectError(f"{where}: invalid history\n{format_validation_error(e)}") from None
    return h.model_dump(by_alias=True, exclude_unset=True)


def format_validation_error(err: ValidationError) -> str:
    """One line per problem: ``model.layers.3.args: ...``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ())) or "(top level)"
        msg = e.get("msg", "invalid")
        lines.append(f"{loc}: {msg}")
    return "\n".join(lines)


def spec_from_dict(data: Any, where: str = "project.json") -> ProjectSpec:
    """Validate a decoded JSON object as a :class:`ProjectSpec` (raises :class:`ProjectError`)."""
    if not isinstance(data, dict):
        raise ProjectError(
            f"{where}: the top level must be a JSON object, not {type(data).__name__}"
        )
    try:
        return ProjectSpec.model_validate(data)
    except ValidationError as e:
        raise ProjectError(f"{where}: invalid project\n{format_validation_error(e)}") from None


def spec_to_dict(spec: ProjectSpec) -> dict:
    return spec.model_dump(mode="json")


# --------------------------------------------------------------------------- in-memory project


@dataclass
class Project:
    """A project in memory: the spec plus what training produced.

    ``model_state`` and ``optim_tensors`` map names to numpy arrays; ``optim_meta`` is the
    optimizer's state_dict with each tensor replaced by ``{"__tensor__": key}``; ``position``
    says where training stands (``epoch``, ``batch``, ``step`` and, when known, ``samples``
    of the current epoch behind); ``history`` holds metric
    series (see :class:`studio.trainer.History`).
    """

    spec: ProjectSpec
    model_state: dict[str, np.ndarray] = field(default_factory=dict)
    optim_tensors: dict[str, np.ndarray] = field(default_factory=dict)
    optim_meta: dict | None = None
    position: dict[str, int] = field(default_factory=lambda: {"epoch": 0, "batch": 0, "step": 0})
    history: dict[str, Any] = field(default_factory=dict)
    thumbnail: bytes | None = None
    path: Path | None = None
    # what opening the file changed or could not keep, one line each (shown to the user)
    notes: list[str] = field(default_factory=list)

    @property
    def trained(self) -> bool:
        return bool(self.model_state)


# --------------------------------------------------------------------------- safetensors blob


def pack_weights(
    model_state: dict[str, np.ndarray], optim_tensors: dict[str, np.ndarray], meta: dict[str, Any]
) -> bytes:
    """One safetensors blob: ``model.<key>`` and ``optim.<key>`` tensors, JSON metadata."""
    tensors = {}  # (np.asarray, not ascontiguousarray: that makes 0-d arrays (1,))
    for k, v in model_state.items():
        tensors["model." + k] = np.asarray(v, order="C")
    for k, v in optim_tensors.items():
        tensors["optim." + k] = np.asarray(v, order="C")
    return st_save(tensors, metadata={"studio": json.dumps(meta)})


def unpack_weights(blob: bytes, where: str) -> tuple[dict, dict, dict]:
    """Inverse of :func:`pack_weights`: (model_state, optim_tensors, meta)."""
    if len(blob) < 8:
        raise ProjectError(f"{where}: weights.safetensors is truncated")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if hlen > len(blob) - 8 or hlen > (100 << 20):
        raise ProjectError(f"{where}: weights.safetensors has a bad header")
    try:
        header = json.loads(blob[8 : 8 + hlen])
        meta = json.loads((header.get("__metadata__") or {}).get("studio", "{}"))
        tensors = st_load(blob)
    except Exception as e:
        raise ProjectError(f"{where}: weights.safetensors cannot be read ({e})") from None
    if not isinstance(meta, dict):
        raise ProjectError(f"{where}: weights.safetensors: its studio metadata must be an object")
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    optim = {k[6:]: v for k, v in tensors.items() if k.startswith("optim.")}
    return model_state, optim, meta


# --------------------------------------------------------------------------- load / save


def _read_member(zf: zipfile.ZipFile, name: str, limit: int, where: str) -> bytes | None:
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    if info.file_size > limit:
        raise ProjectError(f"{where}: {name} is {info.file_size} bytes, over the limit of {limit}")
    if (
        info.compress_size
        and info.file_size / max(info.compress_size, 1) > MAX_RATIO
        and info.file_size > (1 << 20)
    ):
        raise ProjectError(f"{where}: {name} is compressed suspiciously well (zip bomb?)")
    with zf.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ProjectError(f"{where}: {name} is over the limit of {limit} bytes")
    return data


def _decode_json(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ProjectError(f"{where}: not UTF-8 text ({e})") from None
    except json.JSONDecodeError as e:
        raise ProjectError(
            f"{where}: bad JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from None


def load_project(path: str | os.PathLike, check_weights: bool = True) -> Project:
    """Open a ``.darkproj`` archive or a bare ``project.json``.

    Args:
        path: the file.
        check_weights: build the model and check that stored weights fit it (names and
            shapes); a mismatch raises :class:`ProjectError` naming the tensor.

    Raises:
        ProjectError: the file is missing, not a zip/JSON, fails the schema, names an unknown
            layer type, or holds weights that do not match the model.
    """
    path = Path(path)
    where = str(path)
    if path.is_dir():
        raise ProjectError(
            f"{where}: this is a folder, not a project file: open a {SUFFIX} file or a "
            "project .json (an image folder becomes a project's dataset when it is dropped on "
            "the window or chosen as the Dataset panel's folder source)"
        )
    if not path.is_file():
        raise ProjectError(f"{where}: no such file")
    head = path.read_bytes()[:4] if path.stat().st_size >= 4 else b""
    if head.startswith(b"PK"):
        proj = _load_zip(path, where)
    else:
        if path.suffix == SUFFIX:
            raise ProjectError(f"{where}: not a valid .darkproj file (not a zip archive)")
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ProjectError(f"{where}: file is too large for a project.json")
        spec = spec_from_dict(_decode_json(path.read_bytes(), where), where)
        proj = Project(spec=spec)
    proj.path = path
    if check_weights and proj.model_state:
        check_state_matches(proj.spec, proj.model_state, where)
    return proj


def _load_zip(path: Path, where: str) -> Project:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ProjectError(f"{where}: not a valid .darkproj file ({e})") from None
    with zf:
        if len(zf.infolist()) > MAX_MEMBERS:
            raise ProjectError(f"{where}: archive has too many members")
        try:
            raw = _read_member(zf, "project.json", MAX_JSON_BYTES, where)
            if raw is None:
                raise ProjectError(f"{where}: archive has no project.json")
            spec = spec_from_dict(
                _decode_json(raw, where + ":project.json"), where + ":project.json"
            )
            proj = Project(spec=spec)
            hist = _read_member(zf, "history.json", MAX_HISTORY_BYTES, where)
            if hist is not None:
                hw = where + ":history.json"
                proj.history = history_from_dict(_decode_json(hist, hw), hw)
            blob = _read_member(zf, "weights.safetensors", MAX_WEIGHTS_BYTES, where)
            if blob is not None:
                ms, ot, meta = unpack_weights(blob, where)
                proj.model_state, proj.optim_tensors = ms, ot
                proj.optim_meta = meta.get("optimizer")
                proj.position = _position(meta.get("position"), where)
            elif _has_metrics(proj.history):
                # the metrics of a run whose weights are gone: kept, they would be taken for
                # this (untrained) model's and a new run's curves would continue them
                n = len(proj.history.get("steps", {}).get("step") or [])
                proj.history = {}
                proj.notes.append(
                    f"{where}: weights.safetensors is missing, so the project opened "
                    f"untrained and its training history ({n:,} steps) was cleared"
                )
            proj.thumbnail = _read_member(zf, "thumbnail.png", MAX_THUMBNAIL_BYTES, where)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as e:
            raise ProjectError(f"{where}: damaged archive ({e})") from None
    return proj


def _has_metrics(history: dict[str, Any]) -> bool:
    return any(
        any(v for v in (history.get(part) or {}).values()) for part in ("steps", "epochs")
    ) or bool(history.get("_epoch_sums") or history.get("_scheduler"))


def _position(pos: Any, where: str) -> dict[str, int]:
    """The trainer's position from the weights' metadata (counts >= 0)."""
    pos = {} if pos is None else pos
    if not isinstance(pos, dict):
        raise ProjectError(f"{where}: weights.safetensors: position must be an object")
    out = {}
    for k in ("epoch", "batch", "step", "samples"):
        if k not in pos and k == "samples":
            continue  # samples of the current epoch behind (newer files)
        v = pos.get(k, 0)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ProjectError(
                f"{where}: weights.safetensors: position.{k} must be a count (an integer "
                f">= 0), got {v!r}"
            )
        out[k] = v
    return out


def check_state_matches(spec: ProjectSpec, state: dict[str, np.ndarray], where: str) -> None:
    """Raise :class:`ProjectError` unless ``state`` has exactly the model's names and shapes."""
    try:
        expected = expected_state_shapes(spec.model)
    except Exception as e:  # the spec itself is broken: say so
        raise ProjectError(f"{where}: the model cannot be built: {e}") from None
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        raise ProjectError(
            f"{where}: weights do not match the model: missing "
            f"{missing[:5]}, unexpected {extra[:5]}"
        )
    for k, shape in expected.items():
        if shape == () and state[k].shape == (1,):
            # files written before 2026-11-23 stored 0-d tensors (BatchNorm's
            # num_batches_tracked) with shape (1,)
            state[k] = state[k].reshape(())
        if shape is not None and tuple(state[k].shape) != tuple(shape):
            raise ProjectError(
                f"{where}: weight '{k}' has shape {tuple(state[k].shape)}, the "
                f"model needs {tuple(shape)}"
            )


def project_bytes(proj: Project) -> bytes:
    """The ``.darkproj`` archive as bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("project.json", json.dumps(spec_to_dict(proj.spec), indent=2))
        zf.writestr("history.json", json.dumps(proj.history))
        if proj.model_state:
            meta = {"optimizer": proj.optim_meta, "position": proj.position}
            # weights are incompressible noise: store them
            zf.writestr(
                zipfile.ZipInfo("weights.safetensors", (2020, 1, 1, 0, 0, 0)),
                pack_weights(proj.model_state, proj.optim_tensors, meta),
                compress_type=zipfile.ZIP_STORED,
            )
        if proj.thumbnail:
            zf.writestr("thumbnail.png", proj.thumbnail)
    return buf.getvalue()


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename,
    so that a crash leaves either the old file or the new one, never half of one."""
    path = Path(path)
    if path.is_symlink():  # write through the link (replacing it would cut the link)
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600): keep the replaced file's permissions, or
        # give a new one what open() would (0666 less the umask)
        try:
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)  # (reading it means setting it: put it straight back)
    os.umask(mask)
    return mask


def save_project(proj: Project, path: str | os.PathLike) -> Path:
    """Save atomically. A path ending in ``.json`` gets the bare spec (readable JSON, no
    weights); anything else gets the full ``.darkproj`` archive."""
    path = Path(path)
    if path.suffix == ".json":
        data = (json.dumps(spec_to_dict(proj.spec), indent=2) + "\n").encode()
    else:
        data = project_bytes(proj)
    atomic_write(path, data)
    proj.path = path
    return path


def sample_projects(folder: str | os.PathLike) -> list[tuple[Path, ProjectSpec | None, str]]:
    """The sample project files in ``folder``: (path, spec or None, error message).

    Samples are readable ``project.json`` files, one per sample; the ``.darkproj`` files
    that training writes beside them (``<name>.trained.darkproj``, checkpoints) are the
    user's outputs, not samples, and are left out."""
    out = []
    for p in sorted(Path(folder).glob("*.json")):
        try:
            out.append((p, load_project(p, check_weights=False).spec, ""))
        except ProjectError as e:
            out.append((p, None, str(e)))
    return out
