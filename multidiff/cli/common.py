"""Options that several sub-commands share, defined once."""
from __future__ import annotations

import argparse

__all__ = ["add_run_options", "add_data_option", "add_scale_options", "scale_options", "scaled", "rank_zero"]


def add_run_options(p, sampler_steps_help: str) -> None:
    """Sampler, sampler steps, device, seed, model in/out and JSON output options."""
    from ..core.samplers import names
    p.add_argument("--sampler", default="ddpm", choices=names("discrete"))
    p.add_argument("--sampler-steps", type=int, default=None, help=sampler_steps_help)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", help="use a saved model (folder) instead of training one")
    p.add_argument("--save-model", help="save the trained model to this folder")
    p.add_argument("--json", help="benchmark: also write the results as JSON here")


def add_data_option(p) -> None:
    p.add_argument("--data", help="folder holding the dataset files (default: search path / cache / download)")


def _devices(text: str):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of devices, -1 or auto, got {text!r}") from None


def add_scale_options(p) -> None:
    """``--accelerator``, ``--devices``, ``--num-nodes``, ``--strategy``: data-parallel training
    on many devices and nodes (the :class:`~multidiff.core.training.TrainConfig` fields of the
    same names; docs/scaling.md). Their defaults train in one process on ``--device``."""
    from ..core.training import ACCELERATORS, STRATEGIES
    g = p.add_argument_group("many devices and nodes", "data-parallel training on Lightning Fabric (docs/scaling.md); "
                             "each process trains on its own share of every epoch, --batch-size items per step")
    g.add_argument("--accelerator", default="auto", choices=ACCELERATORS, help="default: the type of --device")
    g.add_argument("--devices", type=_devices, default=1, help="processes per node, one device each; -1 or auto: "
                   "every device of the node (default 1)")
    g.add_argument("--num-nodes", type=int, default=1, help="machines (default 1)")
    g.add_argument("--strategy", default="auto", choices=STRATEGIES,
                   help="default auto: DDP when there is more than one process")


def scale_options(args) -> dict:
    """The options of :func:`add_scale_options` as TrainConfig fields; empty when all are at their
    defaults, so that a one-device run passes nothing new."""
    given = {"accelerator": args.accelerator, "devices": args.devices, "num_nodes": args.num_nodes,
             "strategy": args.strategy}
    return {} if given == {"accelerator": "auto", "devices": 1, "num_nodes": 1, "strategy": "auto"} else given


def scaled(default, args):
    """``default`` (a task's TrainConfig) with the options of :func:`add_scale_options`; None when
    none was given (the task then trains with its default, as before)."""
    from dataclasses import replace
    options = scale_options(args)
    return replace(default, **options) if options else None


def rank_zero() -> bool:
    """False on the processes 1.. of a data-parallel run: they trained alongside rank 0 and hold
    the same model, and leave printing and writing files to it."""
    from ..core.training import global_rank
    return global_rank() == 0
