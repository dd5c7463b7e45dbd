"""Options that several sub-commands share, defined once, and :func:`add_option` for an option
whose old spelling still works for one release."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

__all__ = ["add_option", "add_run_options", "add_data_option"]


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
