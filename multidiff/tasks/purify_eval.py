"""Deprecated location: use :mod:`multidiff.tasks.purify.evaluate` (or ``multidiff.tasks.purify``)."""
import warnings

from .purify.attacks import ATTACKS
from .purify.evaluate import RobustnessReport, evaluate, save_grid

warnings.warn("multidiff.tasks.purify_eval is deprecated and will be removed in the next release; import "
              "evaluate, RobustnessReport and save_grid from multidiff.tasks.purify", DeprecationWarning, stacklevel=2)

__all__ = ["evaluate", "RobustnessReport", "ATTACKS", "save_grid"]
