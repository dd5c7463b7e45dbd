"""Checkpoints as safetensors + JSON, written atomically (no pickle anywhere).

A checkpoint is a directory holding ``weights.safetensors`` (named tensors) and
``config.json`` (everything else, plus a ``format_version`` and the sha256 of the weights file).
Every checkpoint says what it holds: a ``kind`` (which object: ``"imputer"``,
``"points.generator"``, ``"tts"`` ...; :data:`KINDS` lists them with the call that loads each) and
the ``kind_version`` of that object's config layout. A loader passes the kind it reads to
:func:`load_checkpoint`, which raises :class:`CheckpointKindError` naming the kind found and the
loader that fits when they differ. Checkpoints written before kinds existed are recognised by the
tag they carried then (see :func:`checkpoint_identity`).
It is written to a temporary sibling and renamed into place, so a crash never leaves a
half-written checkpoint behind; on load the checksum catches a weights file that was
corrupted or swapped afterwards. The single-file writers every task uses live here as well:
:func:`write_atomic`, :func:`write_text_atomic` and :func:`write_json_atomic`.
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

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_identity", "check_kind", "CheckpointKindError", "KINDS",
           "load_state_strict", "encode_labels", "decode_labels", "flatten_state", "unflatten_state",
           "write_atomic", "write_text_atomic", "write_json_atomic", "FORMAT_VERSION"]

WEIGHTS, CONFIG = "weights.safetensors", "config.json"
FORMAT_VERSION = 2  # bump when config.json changes in a way older code cannot read
                    # (2: the kind moved out of each task's config into "kind" / "kind_version")

# Every kind of checkpoint and what loads it: named in the error a loader of another kind raises.
# Strings only, so the core imports no task. A new task adds its kinds here.
KINDS = {
    "imputer": "multidiff.tasks.imputation.Imputer.load(DIR) (command line: multidiff impute --model DIR)",
    "imputation.network": "multidiff.tasks.imputation.load_network(DIR) (a pretrained column-agnostic network; "
                          "Imputer(pretrained=DIR) imputes with it)",
    "points.generator": "multidiff.tasks.points.Generator.load(DIR) (command line: multidiff points sample DIR OUT)",
    "points.completer": "multidiff.tasks.points.Completer.load(DIR) (command line: multidiff points complete DIR "
                        "PARTIAL... --out OUT)",
    "points.latent": "multidiff.tasks.points.LatentGenerator.load(DIR) (command line: multidiff points sample DIR "
                     "OUT)",
    "points.latent_completer": "multidiff.tasks.points.LatentCompleter.load(DIR) (command line: multidiff points "
                               "complete DIR PARTIAL... --out OUT)",
    "tts": "multidiff.tasks.tts.load(DIR) (command line: multidiff tts synthesize --checkpoint DIR)",
    "purifier": "multidiff.tasks.purify.load_models(DIR) (command line: multidiff purify evaluate --checkpoint DIR)",
    "forecasting.timegrad": "multidiff.tasks.forecasting.TimeGradPredictor.deserialize(DIR/..) (the folder that "
                            "holds predictor.json)",
    "forecasting.csdi": "multidiff.tasks.forecasting.CSDIForecastPredictor.deserialize(DIR/..) (the folder that "
                        "holds gluonts-config.json)",
    "training": "core.training.fit(..., checkpoint_dir=DIR/.., resume=True) (a training run's last/ or best/ "
                "state, not a saved model; the task's own save() writes the model)",
    "states": "multidiff.core.checkpoint.load_checkpoint(DIR) (named tensors of no particular object)",
}


def write_atomic(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: readers see the old file or the new one,
    never a half-written one, and a failed write leaves no temporary file behind."""
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any, **json_kwargs) -> None:
    """``json.dumps(obj, **json_kwargs)`` written to ``path`` atomically (see :func:`write_text_atomic`).

    The object is serialised before the file is touched, so an object that is not JSON-able
    raises ``TypeError`` and leaves an existing ``path`` as it was."""
    write_text_atomic(path, json.dumps(obj, **json_kwargs))


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

    ``kind`` (a key of :data:`KINDS`) says which object the checkpoint holds and ``kind_version``
    the layout of its ``config`` (bumped by the task when older loaders could not read it).
    ``config.json`` holds ``{"format_version", "kind", "kind_version", "weights_sha256", "config",
    "states"}``; returns the checkpoint directory.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}; add it to multidiff.core.checkpoint.KINDS "
                         f"(known: {', '.join(KINDS)})")
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
    """A checkpoint holds another kind of object than the loader reads (the message names the
    kind found and the loader that fits)."""


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
    version = meta.get("format_version", 0)  # checkpoints from before versioning have no key
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path} has an invalid format_version {version!r}; the file was modified")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format version {version}, but this multidiff reads up to "
                         f"version {FORMAT_VERSION}: it was written by a newer multidiff; upgrade "
                         "(pip install -U multidiff)")
    return meta


def _legacy_identity(config: Any, states: Any) -> tuple[str, int]:
    """``(kind, kind_version)`` of a checkpoint written before kinds existed (format version 0 or
    1), read from the tag each writer used then: the training loop's ``"loop"`` (or a ``best/``
    holding only ``"ema"``), the Imputer's ``"format"``, points' ``"task"``, TTS' ``"kind":
    "gradtts"``, and the state names of the untagged purifier and forecasting checkpoints."""
    config = config if isinstance(config, dict) else {}
    names = set(states) if isinstance(states, dict) else set()
    if "loop" in config or names == {"ema"}:
        return "training", 1
    if config.get("format") in ("multidiff.Imputer/1", "multidiff.Imputer/2"):
        return "imputer", int(config["format"][-1])
    if config.get("format") == "multidiff.csdi_forecast/1":
        return "forecasting.csdi", 1
    if config.get("task") in ("Generator", "Completer"):
        return f"points.{config['task'].lower()}", 1
    if config.get("kind") == "gradtts":
        return "tts", 1
    if names == {"denoiser", "classifier"}:
        return "purifier", 1
    if names == {"prediction_net"}:
        return "forecasting.timegrad", 1
    return "states", 1


def _identity(meta: dict[str, Any], path: Path) -> tuple[str, int]:
    if meta.get("format_version", 0) < 2:
        return _legacy_identity(meta["config"], meta["states"])
    kind, version = meta.get("kind"), meta.get("kind_version")
    if not isinstance(kind, str) or isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"{path} has no valid kind / kind_version ({kind!r}, {version!r}); the file was modified")
    return kind, version


def checkpoint_identity(directory: str | os.PathLike) -> tuple[str, int]:
    """``(kind, kind_version)`` of the checkpoint in ``directory``, read from its ``config.json``
    alone (the weights are not read). Checkpoints written before kinds existed get the kind their
    old tag implies (see :data:`KINDS`)."""
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
        fits = KINDS.get(name, "a newer multidiff (this kind is unknown here)")
        raise CheckpointKindError(
            f"{directory} holds a {name!r} checkpoint, but this loader reads {' or '.join(map(repr, wanted))} "
            f"checkpoints; load it with {fits.replace('DIR', str(directory))}")
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
    cannot be parsed. Checkpoints written before checksums existed load without the check.
    """
    directory = Path(directory)
    if not (directory / WEIGHTS).is_file() or not (directory / CONFIG).is_file():
        raise FileNotFoundError(
            f"{directory} is not a multidiff checkpoint: expected {WEIGHTS} and {CONFIG} inside it")
    meta = _read_meta(directory / CONFIG)
    if kind is not None:
        _check_identity(directory, _identity(meta, directory / CONFIG), kind, max_kind_version)
    expected = meta.get("weights_sha256")
    if expected is not None and _sha256(directory / WEIGHTS) != expected:
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
