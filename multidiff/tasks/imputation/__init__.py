"""Probabilistic time-series imputation with CSDI (Tashiro et al., NeurIPS 2021).

:class:`Imputer` / :func:`impute` (:mod:`.api`) over :class:`CSDIModel` (:mod:`.model`); the
benchmark protocols are in :mod:`.evaluate`.
"""
from .api import ImputationResult, Imputer, impute
from .model import CSDIModel

__all__ = ["Imputer", "ImputationResult", "impute", "CSDIModel"]
