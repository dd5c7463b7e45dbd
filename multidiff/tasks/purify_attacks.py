"""Deprecated location: use :mod:`multidiff.tasks.purify.attacks`."""
import warnings

from .purify.attacks import (ATTACKS, AttackConfig, check_perturbation, input_gradient, make_attack, pgd,
                             run_attack, settings)

warnings.warn("multidiff.tasks.purify_attacks is deprecated and will be removed in the next release; use "
              "multidiff.tasks.purify.attacks", DeprecationWarning, stacklevel=2)

__all__ = ["AttackConfig", "ATTACKS", "make_attack", "input_gradient", "pgd", "run_attack", "check_perturbation"]
