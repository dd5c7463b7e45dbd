"""Probabilistic time-series imputation with CSDI (Tashiro et al., NeurIPS 2021)."""
from .imputer import ImputationResult, Imputer, impute
from .model import CSDIModel

__all__ = ["Imputer", "ImputationResult", "impute", "CSDIModel"]
