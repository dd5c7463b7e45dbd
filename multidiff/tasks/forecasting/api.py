"""The forecasting models seen through the task contract (:mod:`multidiff.core.task`).

The estimators stay GluonTS-native (``Estimator.train(data) -> Predictor``, ``predictor.predict``,
``serialize`` / ``deserialize``); a :class:`Forecaster` holds one estimator and, once fitted, its
predictor, so that forecasting is trained, sampled, saved and loaded as every other task:
:class:`TimeGradForecaster` (TimeGrad, Rasul et al. 2021) and :class:`CSDIForecaster` (CSDI,
Tashiro et al. 2021).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np

from ...core.device import seeded
from ...core.task import register_task
from ...core.training import TrainConfig
from . import csdi, timegrad

__all__ = ["Forecaster", "TimeGradForecaster", "CSDIForecaster"]


class Forecaster:
    """A GluonTS estimator (``settings``: its keywords) and, after :meth:`fit`, the predictor it trained
    (``predictor``, a GluonTS ``Predictor``)."""

    kind: ClassVar[str]  # the checkpoint kind of the predictor's weights
    estimator_class: ClassVar[type]
    predictor_class: ClassVar[type]
    train_config: ClassVar[TrainConfig]

    def __init__(self, **settings):
        self.estimator = self.estimator_class(**settings)
        self.predictor = None

    @classmethod
    def default_train_config(cls) -> TrainConfig:
        """The estimator's default :class:`~multidiff.core.training.TrainConfig` (its ``train_config=``)."""
        return cls.train_config

    def fit(self, data, validation_data=None) -> "Forecaster":
        """``estimator.train(data, validation_data)`` (GluonTS datasets of multivariate entries); returns ``self``."""
        self.predictor = self.estimator.train(data, validation_data)
        return self

    def sample(self, data, num_samples: Optional[int] = None, seed: Optional[int] = None) -> np.ndarray:
        """Sample paths after the end of each entry of ``data``: ``(entries, num_samples, prediction_length,
        target_dim)`` (``num_samples`` None: the estimator's ``num_parallel_samples``). The predictors draw
        from torch's global generator; ``seed`` draws from one seeded for the call instead, the caller's
        generators left as they were."""
        if self.predictor is None:
            raise RuntimeError(f"this {type(self).__name__} is not fitted; call fit(data) or {type(self).__name__}.load(dir)")
        with seeded(seed):
            return np.stack([np.asarray(f.samples) for f in self.predictor.predict(data, num_samples)])

    def save(self, directory: str | os.PathLike) -> Path:
        """``predictor.serialize(directory)``; returns ``directory``."""
        if self.predictor is None:
            raise RuntimeError(f"this {type(self).__name__} is not fitted; call fit(data) first")
        self.predictor.serialize(directory)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str = "auto") -> "Forecaster":
        """The predictor :meth:`save` wrote (``predictor_class.deserialize``) on ``device``; ``estimator`` is None."""
        model = cls.__new__(cls)
        model.estimator, model.predictor = None, cls.predictor_class.deserialize(directory, device=device)
        return model


@register_task
class TimeGradForecaster(Forecaster):
    """:class:`~.timegrad.TimeGradEstimator` -> :class:`~.timegrad.TimeGradPredictor` through the task contract."""

    kind = "forecasting.timegrad"
    estimator_class, predictor_class = timegrad.TimeGradEstimator, timegrad.TimeGradPredictor
    train_config = timegrad.DEFAULT_TRAIN_CONFIG


@register_task
class CSDIForecaster(Forecaster):
    """:class:`~.csdi.CSDIForecastEstimator` -> :class:`~.csdi.CSDIForecastPredictor` through the task contract."""

    kind = "forecasting.csdi"
    estimator_class, predictor_class = csdi.CSDIForecastEstimator, csdi.CSDIForecastPredictor
    train_config = csdi.DEFAULT_TRAIN_CONFIG
