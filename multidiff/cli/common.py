"""Options that several sub-commands share, defined once, and :func:`add_option` for an option
whose old spelling still works for one release."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

__all__ = ["add_option", "add_run_options", "add_data_option", "add_scale_options", "scale_options", "scaled",
           "rank_zero"]


class _Spelling(argparse.Action):
    """``action="store"`` that knows the option's current spelling (``canonical``): an old spelling
    prints a deprecation note to stderr, and two spellings of one option in one command line are
    an error (as passing both keywords is in Python)."""

    def __init__(self, option_strings, dest, canonical: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.canonical = canonical

    def __call__(self, parser, namespace, values, option_string=None):
        # which spelling gave each option in this parse: kept on the parser, for this namespace only
        state = getattr(parser, "_multidiff_spellings", None)
        if state is None or state[0] is not namespace:
            state = parser._multidiff_spellings = (namespace, {})
        first = state[1].setdefault(self.dest, option_string)
        if first != option_string:
            parser.error(f"{first} and {option_string} are the same option; give it once, as {self.canonical}")
        if option_string != self.canonical:
            print(f"{parser.prog}: {option_string} is deprecated and will be removed in the next release; "
                  f"use {self.canonical}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_option(p: argparse.ArgumentParser, name: str, old: Sequence[str] = (), **kwargs) -> argparse.Action:
    """``p.add_argument(name, **kwargs)`` (a value-taking option), plus each spelling in ``old``
    accepted until the next release: it fills the same destination, prints a deprecation note to
    stderr and is left out of ``--help``."""
    action = p.add_argument(name, action=_Spelling, canonical=name, **kwargs)
    same = {k: kwargs[k] for k in ("type", "nargs", "choices") if k in kwargs}
    for spelling in old:
        p.add_argument(spelling, action=_Spelling, canonical=name, dest=action.dest, default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS, **same)
    return action


def add_run_options(p, sampler_steps_help: str) -> None:
    """Sampler, sampler steps, device, seed, model in/out and JSON output options."""
    from ..core.samplers import names
    p.add_argument("--sampler", default="ddpm", choices=names("discrete"))
    add_option(p, "--sampler-steps", old=["--steps"], type=int, default=None, help=sampler_steps_help)
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
