"""The task contract: the one shape every task's public object has.

As GluonTS' ``Estimator.train -> Predictor`` and scikit-learn's ``fit``: settings go to the
constructor, ``fit(data)`` trains and returns the object, ``sample(..., seed=)`` draws seeded
samples, ``save(directory)`` writes a checkpoint that the classmethod ``load(directory, device=)``
reads back, ``kind`` names that checkpoint's kind (:mod:`multidiff.core.checkpoint`), and the
classmethod ``default_train_config()`` is the :class:`~multidiff.core.training.TrainConfig` that
``fit`` trains with unless ``train_config=`` replaces it. Each task registers its public classes
with :func:`register_task`; ``tests/test_contract.py`` drives every class of :data:`TASKS`.
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, ClassVar, Optional, Protocol, TypeVar, runtime_checkable

from .training import TrainConfig

__all__ = ["Task", "TASKS", "register_task"]


@runtime_checkable
class Task(Protocol):
    """What a task's public object offers (a structural type: no base class to inherit)."""

    kind: ClassVar[str]  # the checkpoint kind save() writes and load() reads

    def fit(self, data: Any, *args, **kwargs) -> "Task":
        """Train on ``data`` (the task's own training data); returns ``self``."""

    def sample(self, *args, seed: Optional[int] = None, **kwargs) -> Any:
        """Samples of the fitted model; the same ``seed`` gives the same samples."""

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the fitted model to ``directory``; returns it."""

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str = "auto") -> "Task":
        """The model :meth:`save` wrote, on ``device``."""

    @classmethod
    def default_train_config(cls) -> TrainConfig:
        """What :meth:`fit` trains with unless ``train_config=`` replaces it."""


# kind -> the public class that saves and loads checkpoints of that kind
TASKS: dict[str, type] = {}

T = TypeVar("T", bound=type)


def register_task(cls: T) -> T:
    """Add ``cls`` to :data:`TASKS` under ``cls.kind`` and return it (so it also works as a class
    decorator). ``TypeError`` names what ``cls`` lacks of the contract: a non-empty ``kind``,
    ``fit``, ``sample`` taking ``seed=``, ``save``, the classmethods ``load`` taking ``device=``
    and ``default_train_config`` returning a ``TrainConfig``; ``ValueError`` when another class
    holds the kind already."""
    if not isinstance(cls, type):
        raise TypeError(f"register_task takes a class, got {type(cls).__name__}")
    name = cls.__qualname__
    problems = [f"no {m}()" for m in ("fit", "sample", "save", "load", "default_train_config")
                if not callable(getattr(cls, m, None))]
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind:
        problems.append(f"kind must be a non-empty str (its checkpoint kind), got {kind!r}")
    for m in ("load", "default_train_config"):
        if callable(getattr(cls, m, None)) and not isinstance(inspect.getattr_static(cls, m), classmethod):
            problems.append(f"{m} must be a classmethod")
    if not problems:
        if not _accepts(cls.sample, "seed"):
            problems.append("sample() must take seed=")
        if not _accepts(cls.load, "device"):
            problems.append("load() must take device=")
        config = cls.default_train_config()
        if not isinstance(config, TrainConfig):
            problems.append(f"default_train_config() must return a TrainConfig, got {type(config).__name__}")
    if problems:
        raise TypeError(f"{name} does not follow the task contract (multidiff.core.task.Task): {'; '.join(problems)}")
    held = TASKS.get(kind, cls)
    if (held.__module__, held.__qualname__) != (cls.__module__, cls.__qualname__):  # a reloaded module may re-register
        raise ValueError(f"the kind {kind!r} is registered by {TASKS[kind].__qualname__} already; give {name} its own")
    TASKS[kind] = cls
    return cls


def _accepts(fn, keyword: str) -> bool:
    params = inspect.signature(fn).parameters
    return keyword in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
