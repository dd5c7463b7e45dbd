"""Deprecated location: use :mod:`multidiff.tasks.imputation.evaluate`. Its command line ``main``
moved out of the library, to ``benchmarks/impute_cli.py`` (run ``benchmarks/impute_aqi36.py`` or
``benchmarks/impute_physionet.py``)."""
import warnings

from .evaluate import DEFAULT_SAMPLERS, format_table, run_aqi36, run_physionet

warnings.warn("multidiff.tasks.imputation.benchmark is deprecated and will be removed in the next release; use "
              "multidiff.tasks.imputation.evaluate", DeprecationWarning, stacklevel=2)

__all__ = ["run_aqi36", "run_physionet", "format_table", "DEFAULT_SAMPLERS"]
