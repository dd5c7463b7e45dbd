"""Checkpoints as safetensors + JSON, written atomically (no pickle anywhere).

A checkpoint is a directory holding ``weights.safetensors`` (named tensors) and
``config.json`` (everything else, plus a ``format_version`` and the sha256 of the weights file).
Every checkpoint says what it holds: a ``kind`` (which object: ``"imputer"``,
``"points.generator"``, ``"tts"`` ...) and the ``kind_version`` of that object's config layout.
Each task registers the kinds it saves with :func:`register_kind`, naming the call that loads
each; the core registers only its own (``"states"`` here, ``"training"`` in
:mod:`multidiff.core.training`). A loader passes the kind it reads to :func:`load_checkpoint`,
which raises :class:`CheckpointKindError` naming the kind found and the loader that fits when
they differ.
It is written to a temporary sibling and renamed into place, so a crash never leaves a
half-written checkpoint behind; on load the checksum catches a weights file that was
corrupted or swapped afterwards. Single files are written by :mod:`multidiff.core.io`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_identity", "check_kind", "CheckpointKindError",
           "register_kind", "registered_kinds", "load_state_strict", "encode_labels", "decode_labels",
           "flatten_state", "unflatten_state", "FORMAT_VERSION"]

WEIGHTS, CONFIG = "weights.safetensors", "config.json"
FORMAT_VERSION = 2  # bump when config.json changes in a way older code cannot read
                    # (2: the kind moved out of each task's config into "kind" / "kind_version")

# Every registered kind of checkpoint -> what loads it (a call with DIR where the checkpoint's
# folder goes), named in the error a loader of another kind raises. Tasks add theirs with
# register_kind when imported, so the core imports no task.
_KINDS: dict[str, str] = {
    "states": "multidiff.core.checkpoint.load_checkpoint(DIR) (named tensors of no particular object)",
}


def register_kind(kind: str, how_to_load: str) -> None:
    """Declare a checkpoint ``kind`` and ``how_to_load`` it: the call (and command line, if any)
    that reads it, with ``DIR`` where the checkpoint's folder goes, e.g.
    ``register_kind("tts", "multidiff.tasks.tts.load(DIR) (command line: ...)")``. The text is
    quoted, path filled in, when a loader of another kind is given such a checkpoint.

    The module that saves a kind calls this at import; :func:`save_checkpoint` refuses a kind
    nobody registered. Registering a kind again with the same text does nothing; with another
    text it raises ``ValueError`` (two owners of one kind)."""
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"a checkpoint kind is a non-empty str, got {kind!r}")
    if not isinstance(how_to_load, str) or "DIR" not in how_to_load:
        raise ValueError(f"how_to_load of kind {kind!r} must be a str naming the call that loads it, with DIR for "
                         f"the checkpoint's folder; got {how_to_load!r}")
    if _KINDS.get(kind, how_to_load) != how_to_load:
        raise ValueError(f"checkpoint kind {kind!r} is already registered ({_KINDS[kind]!r}); pick another name")
    _KINDS[kind] = how_to_load


def registered_kinds() -> dict[str, str]:
    """A copy of the registered kinds: kind -> how to load it (see :func:`register_kind`). Only
    the kinds of the tasks imported so far are there."""
    return dict(_KINDS)


def flatten_state(state: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state (dicts/lists of tensors and plain values) into flat tensors and a
    JSON-able skeleton in which each tensor is replaced by ``{"__tensor__": name}``."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj, key):
        if isinstance(obj, torch.Tensor):
            tensors[key] = obj.detach().cpu().contiguous()
            return {"__tensor__": key}
        if isinstance(obj, dict):
            return {"__dict__": [[k, walk(v, f"{key}.{k}")] for k, v in obj.items()]}
        if isinstance(obj, (list, tuple)):
            return [walk(v, f"{key}.{i}") for i, v in enumerate(obj)]
        return obj

    return tensors, walk(state, prefix)


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(skeleton, dict) and "__tensor__" in skeleton:
        return tensors[skeleton["__tensor__"]]
    if isinstance(skeleton, dict) and "__dict__" in skeleton:
        return {k: unflatten_state(v, tensors) for k, v in skeleton["__dict__"]}
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(directory: str | os.PathLike, states: dict[str, Any], config: dict[str, Any],
                    kind: str = "states", kind_version: int = 1) -> Path:
    """Write ``states`` (name -> nested state of tensors) and a JSON ``config`` atomically.

    ``kind`` (see :func:`register_kind`) says which object the checkpoint holds and ``kind_version``
    the layout of its ``config`` (bumped by the task when older loaders could not read it).
    ``config.json`` holds ``{"format_version", "kind", "kind_version", "weights_sha256", "config",
    "states"}``; returns the checkpoint directory.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}: the module that saves it registers it with "
                         f"multidiff.core.checkpoint.register_kind (registered: {', '.join(_KINDS)})")
    if isinstance(kind_version, bool) or not isinstance(kind_version, int) or kind_version < 1:
        raise ValueError(f"kind_version must be an int >= 1, got {kind_version!r}")
    directory = Path(directory)
    tensors, skeletons = {}, {}
    for name, state in states.items():
        t, skeletons[name] = flatten_state(state, name)
        tensors.update(t)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        save_file(tensors, str(tmp / WEIGHTS))
        meta = {"format_version": FORMAT_VERSION, "kind": kind, "kind_version": kind_version,
                "weights_sha256": _sha256(tmp / WEIGHTS), "config": config, "states": skeletons}
        (tmp / CONFIG).write_text(json.dumps(meta, indent=1))
        if directory.exists():
            old = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.old."))
            os.replace(directory, old / "x")
            os.replace(tmp, directory)
            shutil.rmtree(old)
        else:
            os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return directory


class CheckpointKindError(ValueError):
    """A checkpoint in ``directory`` holds the kind ``found``, not one of the kinds ``wanted`` its
    loader reads. The message names the loader of ``found`` when a task has registered it by the
    time the message is read (it is composed then: a command line that imports every task before
    printing names the exact loader)."""

    def __init__(self, directory: Path, found: str, wanted: tuple[str, ...]):
        super().__init__(directory, found, wanted)
        self.directory, self.found, self.wanted = directory, found, wanted

    def __str__(self) -> str:
        name = self.found
        if name in _KINDS:
            fits = f"load it with {_KINDS[name].replace('DIR', str(self.directory))}"
        else:  # its task is not imported (it registers its kinds on import), or a newer multidiff wrote it
            fits = (f"load it with the loader of the task package (multidiff.tasks.<task>) that saves {name!r} "
                    f"checkpoints; that kind is not registered here (its task is not imported, or a newer "
                    f"multidiff wrote it)")
        return (f"{self.directory} holds a {name!r} checkpoint, but this loader reads "
                f"{' or '.join(map(repr, self.wanted))} checkpoints; {fits}")


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}): the checkpoint is truncated or corrupted; "
                         "re-save or re-train") from None
    if not isinstance(meta, dict) or not {"config", "states"} <= meta.keys():
        keys = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{path} is not a multidiff checkpoint config: expected the keys 'config' and "
                         f"'states', found {keys}")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path} has no valid format_version ({version!r}): the file was modified, or written "
                         "by a development version of multidiff from before checkpoint kinds; re-save or re-train")
    if version < FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format version {version}, written by a development version of "
                         f"multidiff from before checkpoint kinds; this multidiff reads version {FORMAT_VERSION}: "
                         "re-save or re-train")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format version {version}, but this multidiff reads up to "
                         f"version {FORMAT_VERSION}: it was written by a newer multidiff; upgrade "
                         "(pip install -U multidiff)")
    return meta


def _identity(meta: dict[str, Any], path: Path) -> tuple[str, int]:
    kind, version = meta.get("kind"), meta.get("kind_version")
    if not isinstance(kind, str) or isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"{path} has no valid kind / kind_version ({kind!r}, {version!r}); the file was modified")
    return kind, version


def checkpoint_identity(directory: str | os.PathLike) -> tuple[str, int]:
    """``(kind, kind_version)`` of the checkpoint in ``directory``, read from its ``config.json``
    alone (the weights are not read)."""
    directory = Path(directory)
    if not (directory / CONFIG).is_file():
        raise FileNotFoundError(f"{directory} is not a multidiff checkpoint: expected {CONFIG} inside it")
    path = directory / CONFIG
    return _identity(_read_meta(path), path)


def _check_identity(directory: Path, found: tuple[str, int], kind, max_kind_version: Optional[int]) -> None:
    """Raise :class:`CheckpointKindError` unless the checkpoint's kind is ``kind`` (a str or a
    tuple of them), and ``ValueError`` when its kind version is newer than ``max_kind_version``."""
    wanted = (kind,) if isinstance(kind, str) else tuple(kind)
    name, version = found
    if name not in wanted:
        raise CheckpointKindError(directory, name, wanted)
    if max_kind_version is not None and version > max_kind_version:
        raise ValueError(f"{directory} holds a {name!r} checkpoint of version {version}, but this multidiff reads "
                         f"up to version {max_kind_version}: it was written by a newer multidiff; upgrade "
                         "(pip install -U multidiff)")


def check_kind(directory: str | os.PathLike, kind: str | tuple[str, ...], max_kind_version: Optional[int] = None) -> str:
    """Raise :class:`CheckpointKindError` (naming the kind found and the loader that fits) unless
    the checkpoint in ``directory`` is of ``kind`` (one kind or a tuple), and ``ValueError`` when
    its layout is newer than ``max_kind_version``; returns its kind. Reads ``config.json`` only."""
    directory = Path(directory)
    found = checkpoint_identity(directory)
    _check_identity(directory, found, kind, max_kind_version)
    return found[0]


def load_checkpoint(directory: str | os.PathLike, map_location: str | torch.device = "cpu",
                    kind: Optional[str | tuple[str, ...]] = None,
                    max_kind_version: Optional[int] = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; returns ``(states, config)``.

    With ``kind`` (one kind or a tuple of kinds) a checkpoint of another kind raises
    :class:`CheckpointKindError` (a ``ValueError``) naming the kind found and the loader that fits,
    before the weights are read; ``max_kind_version`` is the newest layout the caller reads.
    Raises ``FileNotFoundError`` when a file is missing and ``ValueError`` when ``config.json``
    is unreadable or from a newer format, or when ``weights.safetensors`` fails its checksum or
    cannot be parsed.
    """
    directory = Path(directory)
    if not (directory / WEIGHTS).is_file() or not (directory / CONFIG).is_file():
        raise FileNotFoundError(
            f"{directory} is not a multidiff checkpoint: expected {WEIGHTS} and {CONFIG} inside it")
    meta = _read_meta(directory / CONFIG)
    if kind is not None:
        _check_identity(directory, _identity(meta, directory / CONFIG), kind, max_kind_version)
    if _sha256(directory / WEIGHTS) != meta.get("weights_sha256"):
        raise ValueError(f"{directory / WEIGHTS} does not match the checksum in {CONFIG}: the file is "
                         "corrupted or was modified; re-save or re-train")
    try:
        tensors = load_file(str(directory / WEIGHTS), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{directory / WEIGHTS} cannot be read as safetensors ({e}): the file is "
                         "corrupted or not a weights file; re-save or re-train") from None
    try:
        states = {name: unflatten_state(sk, tensors) for name, sk in meta["states"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{directory / CONFIG} refers to tensors missing from {WEIGHTS} ({e!r}): the "
                         "checkpoint files do not belong together; re-save or re-train") from None
    return states, meta["config"]


def load_state_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str = "checkpoint") -> nn.Module:
    """``module.load_state_dict(state_dict)``, but a mismatch raises one ``ValueError`` that lists
    the first missing, unknown and wrongly shaped parameter names (``what`` names the source in
    the message, e.g. ``"checkpoint /runs/a"``). Nothing is loaded when they do not match.
    Returns ``module``."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unknown = [k for k in state_dict if k not in expected]
    shapes = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state_dict and hasattr(state_dict[k], "shape") and tuple(state_dict[k].shape) != tuple(v.shape)]

    def first(names: list[str], n: int = 5) -> str:
        return ", ".join(names[:n]) + (f" ... ({len(names)} in all)" if len(names) > n else "")

    problems = []
    if missing:
        problems.append(f"missing parameters: {first(missing)}")
    if unknown:
        problems.append(f"unknown parameters: {first(unknown)}")
    if shapes:
        problems.append(f"shape mismatches (checkpoint vs model): {first(shapes, 3)}")
    if not problems:
        try:
            module.load_state_dict(state_dict)
            return module
        except RuntimeError as e:  # e.g. a custom load hook rejecting the state
            problems.append(str(e).strip())
    raise ValueError(f"the {what} does not match this {type(module).__name__} ({'; '.join(problems)}): it was "
                     "written for a different model configuration or multidiff version; load it with the "
                     "matching settings/version or re-train")


_SCALARS = (str, int, float, bool, type(None))


def encode_labels(labels) -> list:
    """Column labels as JSON-able values: tuples (MultiIndex columns) become
    ``{"__tuple__": [...]}``, nested as needed; str, int, float, bool and None stay as they are.
    NumPy scalars are turned into Python ones. Anything else raises ``ValueError``.
    Inverse: :func:`decode_labels`."""
    def enc(label):
        if hasattr(label, "item") and not isinstance(label, _SCALARS) and getattr(label, "ndim", None) == 0:
            label = label.item()  # numpy scalars, e.g. np.int64 column names
        if isinstance(label, tuple):
            return {"__tuple__": [enc(v) for v in label]}
        if isinstance(label, _SCALARS):
            return label
        raise ValueError(f"column label {label!r} of type {type(label).__name__} cannot be stored in a checkpoint: "
                         "labels must be str, int, float, bool, None or tuples of those; rename the columns "
                         "(e.g. df.columns = df.columns.map(str))")
    return [enc(label) for label in labels]


def decode_labels(obj) -> list:
    """Inverse of :func:`encode_labels`: ``{"__tuple__": [...]}`` becomes a tuple again."""
    def dec(value):
        if isinstance(value, dict):
            if set(value) != {"__tuple__"} or not isinstance(value["__tuple__"], list):
                raise ValueError(f"invalid encoded column label {value!r}; expected {{'__tuple__': [...]}}")
            return tuple(dec(v) for v in value["__tuple__"])
        if isinstance(value, _SCALARS):
            return value
        raise ValueError(f"invalid encoded column label {value!r}")
    if not isinstance(obj, list):
        raise ValueError(f"encoded column labels must be a JSON list, got {type(obj).__name__}")
    return [dec(v) for v in obj]
