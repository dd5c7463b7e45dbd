"""Public task API. Each task is a thin composition of the core and one network.

Names are imported lazily so that a task's optional dependencies (gluonts, librosa,
open3d) load only when that task is used.
"""
import importlib

_LAZY = {
    "impute": ("imputation", "impute"),
    "Imputer": ("imputation", "Imputer"),
    "ImputationResult": ("imputation", "ImputationResult"),
    "forecast": ("forecasting", "forecast"),
    "TimeGradEstimator": ("forecasting", "TimeGradEstimator"),
    "CSDIForecastEstimator": ("forecasting", "CSDIForecastEstimator"),
    "tts": ("tts", None),
    "points": ("points", None),
    "purify": ("purify", None),
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'multidiff.tasks' has no attribute {name!r}")
    module, attr = _LAZY[name]
    mod = importlib.import_module(f"{__name__}.{module}")
    return mod if attr is None else getattr(mod, attr)
