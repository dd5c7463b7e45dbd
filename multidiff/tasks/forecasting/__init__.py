"""Probabilistic multivariate forecasting, native to GluonTS and pandas.

TimeGrad (Rasul et al., ICML 2021): :class:`TimeGradEstimator` -> :class:`TimeGradPredictor`.
:func:`forecast` forecasts a wide DataFrame; :func:`evaluate` scores a predictor on rolling
test windows; :func:`fan_chart` draws a forecast.
"""
from .plot import fan_chart
from .timegrad import (CheckMultivariate, FrameForecast, TimeGradEstimator, TimeGradLightningModule,
                       TimeGradPredictor, default_lags, evaluate, forecast)

__all__ = ["TimeGradEstimator", "TimeGradPredictor", "TimeGradLightningModule", "CheckMultivariate",
           "default_lags", "forecast", "FrameForecast", "evaluate", "fan_chart"]
