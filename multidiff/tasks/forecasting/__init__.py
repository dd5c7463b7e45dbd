"""Probabilistic multivariate forecasting, native to GluonTS and pandas.

TimeGrad (Rasul et al., ICML 2021): :class:`TimeGradEstimator` -> :class:`TimeGradPredictor`;
CSDI forecasting (Tashiro et al., NeurIPS 2021): :class:`CSDIForecastEstimator` ->
:class:`CSDIForecastPredictor`; :class:`TimeGradForecaster` and :class:`CSDIForecaster` hold an estimator
and its predictor as one object of the task contract (:mod:`multidiff.core.task`).
:func:`forecast` forecasts a wide DataFrame; :func:`evaluate` scores a predictor on rolling
test windows, :func:`evaluate_peer` a peer of :mod:`.peers`; :func:`fan_chart` draws a forecast.
"""
from .timegrad import (PAPER_SETTINGS, CheckMultivariate, TimeGradEstimator, TimeGradLightningModule, TimeGradPredictor,
                       default_lags)
from .csdi import CSDIForecastEstimator, CSDIForecastModel, CSDIForecastPredictor
from .api import CSDIForecaster, Forecaster, TimeGradForecaster
from .evaluate import evaluate, evaluate_peer
from .frame import MODELS, FrameForecast, forecast
from .plot import compare_fan_charts, fan_chart

__all__ = ["TimeGradEstimator", "TimeGradPredictor", "TimeGradLightningModule", "CheckMultivariate",
           "default_lags", "PAPER_SETTINGS", "forecast", "FrameForecast", "evaluate", "evaluate_peer", "fan_chart",
           "compare_fan_charts", "MODELS",
           "CSDIForecastEstimator", "CSDIForecastPredictor", "CSDIForecastModel", "Forecaster", "TimeGradForecaster",
           "CSDIForecaster"]
