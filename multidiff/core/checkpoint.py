"""Checkpoints as safetensors + JSON, written atomically (no pickle anywhere).

A checkpoint is a directory holding ``weights.safetensors`` (named tensors) and
``config.json`` (everything else). It is written to a temporary sibling and renamed into
place, so a crash never leaves a half-written checkpoint behind.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

__all__ = ["save_checkpoint", "load_checkpoint", "flatten_state", "unflatten_state", "write_atomic"]

WEIGHTS, CONFIG = "weights.safetensors", "config.json"


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


def save_checkpoint(directory: str | os.PathLike, states: dict[str, Any], config: dict[str, Any]) -> Path:
    """Write ``states`` (name -> nested state of tensors) and a JSON ``config`` atomically."""
    directory = Path(directory)
    tensors, skeletons = {}, {}
    for name, state in states.items():
        t, skeletons[name] = flatten_state(state, name)
        tensors.update(t)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        save_file(tensors, str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(json.dumps({"config": config, "states": skeletons}, indent=1))
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


def load_checkpoint(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; returns ``(states, config)``."""
    directory = Path(directory)
    if not (directory / WEIGHTS).is_file() or not (directory / CONFIG).is_file():
        raise FileNotFoundError(
            f"{directory} is not a multidiff checkpoint: expected {WEIGHTS} and {CONFIG} inside it")
    meta = json.loads((directory / CONFIG).read_text())
    tensors = load_file(str(directory / WEIGHTS), device=str(map_location))
    states = {name: unflatten_state(sk, tensors) for name, sk in meta["states"].items()}
    return states, meta["config"]
