"""Probabilistic time-series imputation with CSDI (Tashiro et al., NeurIPS 2021).

:class:`Imputer` / :func:`impute` (:mod:`.api`) over :class:`CSDIModel` (:mod:`.model`); the
benchmark protocols are in :mod:`.evaluate`.
"""
from .api import ImputationResult, Imputer, impute
from .model import CSDIModel

__all__ = ["Imputer", "ImputationResult", "impute", "CSDIModel"]


def __getattr__(name):
    if name == "imputer":  # the module api.py was imputer.py until 0.1
        import warnings

        from . import api
        warnings.warn("multidiff.tasks.imputation.imputer is deprecated and will be removed in the next release; "
                      "use multidiff.tasks.imputation.api", DeprecationWarning, stacklevel=2)
        return api
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
