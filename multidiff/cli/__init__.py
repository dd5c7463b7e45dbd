"""``multidiff <task> ...``: one sub-command module per task, each with ``add_parser(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from ..core.checkpoint import CheckpointKindError

TASKS = ["impute", "forecast", "tts", "points", "purify"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="multidiff", description="Diffusion models for time series, audio and point clouds.")
    sub = parser.add_subparsers(dest="task", metavar="TASK")
    sub.required = True
    for task in TASKS:
        try:
            module = importlib.import_module(f"{__name__}.{task}")
        except ModuleNotFoundError as err:  # a task whose optional extras are missing
            if err.name == f"{__name__}.{task}":
                continue  # task not shipped in this build
            if err.name and err.name.startswith("multidiff"):
                raise
            p = sub.add_parser(task, help=f"(unavailable: {err.name} is not installed)")
            p.set_defaults(func=lambda args, e=err: sys.exit(
                f"multidiff {args.task}: needs {e.name}; pip install 'multidiff[all]'"))
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, KeyError, RuntimeError, ImportError) as err:
        if isinstance(err, CheckpointKindError):
            _import_tasks()  # each task registers its checkpoint kinds on import: the message names the loader
        print(f"multidiff {args.task}: error: {err}", file=sys.stderr)
        return 2


def _import_tasks() -> None:
    """Import every task package that this installation can (a task whose extras are missing is skipped)."""
    for info in pkgutil.iter_modules(importlib.import_module("multidiff.tasks").__path__, "multidiff.tasks."):
        if info.ispkg:
            try:
                importlib.import_module(info.name)
            except ImportError:
                pass


if __name__ == "__main__":
    sys.exit(main())
