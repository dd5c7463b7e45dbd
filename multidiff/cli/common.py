"""Options that several sub-commands share, defined once."""
from __future__ import annotations


def add_run_options(p, steps_help: str) -> None:
    """Sampler, device, seed, model in/out and JSON output options."""
    from ..core.samplers import names
    p.add_argument("--sampler", default="ddpm", choices=names("discrete"))
    p.add_argument("--steps", type=int, default=None, help=steps_help)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", help="use a saved model (folder) instead of training one")
    p.add_argument("--save-model", help="save the trained model to this folder")
    p.add_argument("--json", help="benchmark: also write the results as JSON here")


def add_data_option(p) -> None:
    p.add_argument("--data", help="folder holding the dataset files (default: search path / cache / download)")
